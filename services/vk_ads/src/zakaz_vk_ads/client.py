"""Talking to VK Ads API v2: tokens, paged collections, banner statistics; no ClickHouse here.

Requests go through `transport.VkHttp` (retries, rate limits); this module adds the API's
shapes: OAuth2 grants, `limit`/`offset` paging, ≤ 200 ids and ≤ 92 days per statistics
request, and one renewal of the token after a 401 (`expired_token` → refresh,
`invalid_token` → a new token).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import httpx
from zakaz_common.errors import AuthError, PermanentError, StructuralError
from zakaz_common.timeutil import chunks

from zakaz_vk_ads.tokens import Token, TokenSource
from zakaz_vk_ads.transport import VkHttp, error_text, json_body

log = logging.getLogger(__name__)

#: VK's page-size ceiling for collections.
PAGE_LIMIT = 50

#: Statistics accept at most this many object ids per request.
STAT_IDS_PER_REQUEST = 200

#: Statistics windows: VK serves 366 days, its partner docs say 92; 92 is safe for both.
STAT_WINDOW_DAYS = 92

#: Listing fields the ETL reads.
PLAN_FIELDS = ("id", "name", "status")
GROUP_FIELDS = ("id", "name", "ad_plan_id", "status", "utm", "enable_utm")
BANNER_FIELDS = ("id", "ad_group_id", "name", "status", "urls")

#: Deleted objects still carry the spend of the days they ran.
ALL_STATUSES = "active,blocked,deleted"


class VkOAuth:
    """The token endpoint for one app: issues and refreshes token pairs for one user."""

    def __init__(
        self,
        http: VkHttp,
        client_id: str,
        client_secret: str,
        username: str = "",
        clock: Any = time.time,
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._secret = client_secret
        self._username = username
        self._clock = clock
        self._deleted_once = False

    def __call__(self, refresh_token: str | None) -> Token:
        """Refresh the pair when a refresh token is given, else issue a new one."""
        form = {"client_id": self._client_id, "client_secret": self._secret}
        if refresh_token is not None:
            form.update(grant_type="refresh_token", refresh_token=refresh_token)
        elif self._username:
            form.update(grant_type="agency_client_credentials", agency_client_name=self._username)
        else:
            form.update(grant_type="client_credentials")
        response = self._http.send("token", "POST", "/api/v2/oauth2/token.json", data=form)
        if response.status_code == 403 and refresh_token is None and not self._deleted_once:
            # All 5 tokens are taken (by lost caches or other tools): VK's remedy is to delete
            # them, once, and ask again.
            self._deleted_once = True
            log.warning("VK Ads refused a 6th token: deleting this app's tokens and retrying once")
            self._delete_tokens()
            return self(None)
        if response.status_code != 200:
            who = f" for agency client {self._username!r}" if self._username else ""
            raise AuthError(
                f"VK Ads refused a token{who} ({response.status_code} "
                f"{error_text(response)}): check VK_CLIENT_ID, VK_CLIENT_SECRET"
                + (" and VK_AGENCY_CLIENTS" if self._username else "")
            )
        return self._parse(response)

    def _delete_tokens(self) -> None:
        form = {"client_id": self._client_id, "client_secret": self._secret}
        if self._username:
            form["username"] = self._username
        response = self._http.send("token", "POST", "/api/v2/oauth2/token/delete.json", data=form)
        if response.status_code >= 400:
            raise AuthError(
                f"VK Ads has 5 live tokens for this app and refused to delete them "
                f"({response.status_code} {error_text(response)}): delete them in ads.vk.com"
            )

    def _parse(self, response: httpx.Response) -> Token:
        body = json_body(response)
        try:
            access = str(body["access_token"])
            refresh = str(body.get("refresh_token") or "")
            # A string in the client-credentials answer, a number elsewhere.
            expires_in = float(body.get("expires_in") or 86400)
        except (TypeError, KeyError, ValueError) as exc:
            raise StructuralError("VK Ads token answer has no access_token/expires_in") from exc
        return Token(access, refresh, self._clock() + expires_in)


class VkAdsClient:
    """Reads one account: ad plans, ad groups, banners and banner statistics per day."""

    def __init__(self, http: VkHttp, tokens: TokenSource) -> None:
        self._http = http
        self._tokens = tokens

    def get(self, kind: str, path: str, params: Mapping[str, str]) -> Any:
        """GET a JSON answer, renewing the token once after a 401."""
        token = self._tokens.token()
        response = self._get(kind, path, params, token)
        if response.status_code == 401:
            code = _auth_code(response)
            if code in {"invalid_client", "invalid_user"}:
                raise AuthError(f"VK Ads refused the app ({code}): check VK_CLIENT_ID/SECRET")
            self._http.counts["renewals"] += 1
            log.info("VK Ads answered 401 %s; renewing the token once", code)
            token = self._tokens.renew(token, code)
            response = self._get(kind, path, params, token)
            if response.status_code == 401:
                raise AuthError(
                    f"VK Ads refused a freshly renewed token ({_auth_code(response)}): "
                    "check the app's access in ads.vk.com → Настройки → API"
                )
        if response.status_code == 403:
            raise AuthError(f"VK Ads denied access to {path}: {error_text(response)}")
        if response.status_code >= 400:
            raise PermanentError(
                f"VK Ads answered {response.status_code} on {path}: {error_text(response)}"
            )
        body = json_body(response)
        if body is None:
            raise StructuralError(f"VK Ads answered {path} with a body that is not JSON")
        return body

    def _get(self, kind: str, path: str, params: Mapping[str, str], token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return self._http.send(kind, "GET", path, params=dict(params), headers=headers)

    def paged(
        self, resource: str, fields: Sequence[str], filters: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, `PAGE_LIMIT` at a time by `offset`."""
        path = f"/api/v2/{resource}.json"
        offset, seen = 0, set()
        while True:
            params = {"fields": ",".join(fields), "limit": str(PAGE_LIMIT), "offset": str(offset)}
            params.update(filters or {})
            body = self.get(resource, path, params)
            items, count = _page(body, path)
            for item in items:
                key = item.get("id")
                # An upstream that ignores `offset` would page forever.
                if key in seen:
                    raise StructuralError(f"VK Ads repeated {resource} id {key} across pages")
                seen.add(key)
                yield item
            offset += len(items)
            if not items or offset >= count:
                return

    def ad_plans(self, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The ad plans (campaigns) with these ids, whatever their status."""
        return self._by_ids("ad_plans", PLAN_FIELDS, ids)

    def ad_groups(self, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The ad groups with these ids, whatever their status."""
        return self._by_ids("ad_groups", GROUP_FIELDS, ids)

    def banners(self) -> Iterator[dict[str, Any]]:
        """Every banner of the account, deleted ones included."""
        return self.paged("banners", BANNER_FIELDS, {"_status__in": ALL_STATUSES})

    def _by_ids(
        self, resource: str, fields: Sequence[str], ids: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        unique = sorted(set(ids), key=lambda i: (len(i), i))
        for start in range(0, len(unique), PAGE_LIMIT):
            chunk = unique[start : start + PAGE_LIMIT]
            filters = {"_id__in": ",".join(chunk), "_status__in": ALL_STATUSES}
            yield from self.paged(resource, fields, filters)

    def banner_days(
        self, banner_ids: Sequence[str], since: date, to: date
    ) -> Iterator[dict[str, Any]]:
        """`items[]` of `statistics/banners/day.json`, ≤ 200 ids and ≤ 92 days per request."""
        path = "/api/v2/statistics/banners/day.json"
        for first, last in chunks(since, to, STAT_WINDOW_DAYS):
            for start in range(0, len(banner_ids), STAT_IDS_PER_REQUEST):
                ids = banner_ids[start : start + STAT_IDS_PER_REQUEST]
                params = {
                    "id": ",".join(ids),
                    "date_from": first.isoformat(),
                    "date_to": last.isoformat(),
                    "metrics": "base",
                }
                body = self.get("statistics", path, params)
                items = body.get("items") if isinstance(body, Mapping) else None
                if not isinstance(items, list):
                    raise StructuralError(f"VK Ads statistics answer has no items list ({path})")
                yield from (i for i in items if isinstance(i, dict))


def _auth_code(response: httpx.Response) -> str:
    body = json_body(response)
    if isinstance(body, Mapping):
        code = body.get("code") or body.get("error")
        if isinstance(code, Mapping):
            code = code.get("code")
        if code:
            return str(code)
    challenge = response.headers.get("WWW-Authenticate", "")
    marker = 'error="'
    if marker in challenge:
        return str(challenge.split(marker, 1)[1].split('"', 1)[0])
    return "invalid_token"


def _page(body: Any, path: str) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(body, Mapping) or not isinstance(body.get("items"), list):
        raise StructuralError(f"VK Ads answered {path} without an items list")
    try:
        count = int(body.get("count", 0))
    except (TypeError, ValueError) as exc:
        raise StructuralError(f"VK Ads answered {path} with a non-numeric count") from exc
    return [i for i in body["items"] if isinstance(i, dict)], count
