"""A stand-in for VK Ads API v2 (ads.vk.com), faithful where the ETL depends on it.

- `POST /api/v2/oauth2/token.json`: client_credentials, agency_client_credentials and
  refresh_token grants; at most 5 live tokens per (client_id, user), the 6th request is 403;
  tokens live 24 h (`expires_in` is a string, as VK sends it); refreshing replaces the token.
- `GET /api/v2/{ad_plans,ad_groups,campaigns,banners}.json`: `fields`, `limit` (≤ 50, else a
  `validation_failed` 400), `offset`, `_<field>`/`_<field>__in`/`_<field>__ne` filters; deleted
  objects only when a status filter asks for them; `{"count", "offset", "items"}`.
- `GET /api/v2/statistics/banners/day.json`: `id` (≤ 200, else `ERR_LIMIT_EXCEEDED`; a foreign
  id fails the request with `ERR_WRONG_BANNERS`), `date_from`/`date_to`; one row per date,
  money as decimal strings.
- 401 `expired_token`/`invalid_token` bodies with `WWW-Authenticate`; `X-RateLimit-*` headers on
  every answer and 429 past the per-second, hourly or daily limit.

Control endpoints (under `/_sandbox/vk`): expire or forget tokens, throttle (429) or fail
(5xx) the next N calls, change the rate limits, revise a day's numbers, rename an ad plan or
group, serve a banner's statistics rows in the wrong shape, and read what was asked.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from zakaz_sandbox.season import reference_day
from zakaz_sandbox.vk_data import (
    ADVERTISER_CLIENT_ID,
    ADVERTISER_CLIENT_SECRET,
    AGENCY_CLIENT_ID,
    AGENCY_CLIENT_SECRET,
    AGENCY_CLIENTS,
    Account,
    Stat,
    base_json,
    build_accounts,
    objects_json,
    revise,
    total,
)

#: VK issues at most this many tokens per (client_id, user), whatever their state.
MAX_LIVE_TOKENS = 5

#: Lifetime of an access token.
TOKEN_TTL_SECONDS = 86400

#: VK's page-size ceiling for collections.
MAX_LIMIT = 50

#: Statistics take at most this many object ids per request.
MAX_STAT_IDS = 200

_DEFAULT_FIELDS = {
    "ad_plans": ("id", "name"),
    "ad_groups": ("id", "name", "package_id", "last_updated"),
    "banners": ("id", "ad_group_id", "moderation_status"),
}
_ZERO = Decimal("0.00")


@dataclass
class _Token:
    access: str
    refresh: str
    owner: tuple[str, str]
    expires_at: float


@dataclass
class _Limits:
    rps: int = 100
    hourly: int = 100_000
    daily: int = 1_000_000


@dataclass
class VkSandboxState:
    """Everything one router instance remembers."""

    today: date
    accounts: dict[tuple[str, str], Account]
    secrets: dict[str, str] = field(
        default_factory=lambda: {
            ADVERTISER_CLIENT_ID: ADVERTISER_CLIENT_SECRET,
            AGENCY_CLIENT_ID: AGENCY_CLIENT_SECRET,
        }
    )
    agency_clients: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {AGENCY_CLIENT_ID: AGENCY_CLIENTS}
    )
    tokens: dict[str, _Token] = field(default_factory=dict)
    token_requests: Counter[str] = field(default_factory=Counter)
    #: The latest API calls (bounded: a demo sandbox runs for hours).
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    limits: _Limits = field(default_factory=_Limits)
    #: Calls per (account, window kind): the current window and how many it has had.
    used: dict[tuple[tuple[str, str], str], tuple[int, int]] = field(default_factory=dict)
    throttle_left: int = 0
    throttle_retry_after: int | None = None
    fail_left: int = 0
    fail_status: int = 503
    #: Banners whose statistics `rows` are served as an object keyed by date, not a list.
    malformed_banners: set[int] = field(default_factory=set)

    def live_tokens(self, owner: tuple[str, str]) -> int:
        """Tokens of one (client_id, user), expired ones included (VK counts them too)."""
        return sum(1 for t in self.tokens.values() if t.owner == owner)


class Count(BaseModel):
    """How many of the next calls a fault applies to (and a `Retry-After` to send with 429)."""

    count: int = 1
    status: int = 503
    retry_after: int | None = None


class MalformBody(BaseModel):
    """Banners whose statistics rows come as an object instead of a list (`[]`: none)."""

    banner_ids: list[int]


class RenameBody(BaseModel):
    """A new name for an ad plan or ad group (any text: a typo, a paste with control bytes)."""

    kind: Literal["ad_plans", "ad_groups"]
    id: int
    name: str


class LimitsBody(BaseModel):
    """New rate limits (per second, hour, day)."""

    rps: int | None = None
    hourly: int | None = None
    daily: int | None = None


class Revision(BaseModel):
    """Revise one day's numbers: every banner by `factor`, or one banner to exact values."""

    date: date
    banner_id: int | None = None
    factor: Decimal | None = None
    shows: int | None = None
    clicks: int | None = None
    spent: Decimal | None = None


def create_router(*, today: date | None = None) -> APIRouter:
    """The VK Ads API v2 stand-in with its own state, and its control endpoints."""
    ref = reference_day(today)
    state = VkSandboxState(today=ref, accounts=build_accounts(ref))
    router = APIRouter()

    @router.post("/api/v2/oauth2/token.json")
    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        return _issue_token(state, form)

    @router.post("/api/v2/oauth2/token/delete.json")
    async def delete_tokens(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id = form.get("client_id", "")
        if state.secrets.get(client_id) != form.get("client_secret") or not client_id:
            return _oauth_error(401, "invalid_client", "Invalid client credentials")
        owner = (client_id, form.get("username", ""))
        for key in [k for k, t in state.tokens.items() if t.owner == owner]:
            del state.tokens[key]
        return Response(status_code=204)

    for resource in ("ad_plans", "ad_groups", "campaigns", "banners"):
        router.add_api_route(
            f"/api/v2/{resource}.json", _collection_endpoint(state, resource), methods=["GET"]
        )

    @router.get("/api/v2/statistics/{objects}/day.json")
    async def statistics(objects: str, request: Request) -> Response:
        return _api_call(
            state, request, lambda account: _day_stats(state, account, objects, request)
        )

    _add_controls(router, state)
    return router


def _add_controls(router: APIRouter, state: VkSandboxState) -> None:
    @router.post("/_sandbox/vk/tokens/expire")
    async def expire() -> dict[str, int]:
        for t in state.tokens.values():
            t.expires_at = time.time() - 1
        return {"expired": len(state.tokens)}

    @router.post("/_sandbox/vk/tokens/invalidate")
    async def invalidate() -> dict[str, int]:
        forgotten = len(state.tokens)
        state.tokens.clear()
        return {"invalidated": forgotten}

    @router.get("/_sandbox/vk/tokens")
    async def tokens() -> dict[str, Any]:
        return {
            "tokens": [
                {"access_token": t.access, "refresh_token": t.refresh}
                for t in state.tokens.values()
            ],
            "secrets": sorted(state.secrets.values()),
        }

    @router.post("/_sandbox/vk/throttle")
    async def throttle(body: Count) -> dict[str, int]:
        state.throttle_left, state.throttle_retry_after = body.count, body.retry_after
        return {"throttle_left": state.throttle_left}

    @router.post("/_sandbox/vk/fail")
    async def fail(body: Count) -> dict[str, int]:
        state.fail_left, state.fail_status = body.count, body.status
        return {"fail_left": state.fail_left}

    @router.post("/_sandbox/vk/malform")
    async def malform(body: MalformBody) -> dict[str, list[int]]:
        state.malformed_banners = set(body.banner_ids)
        return {"malformed_banners": sorted(state.malformed_banners)}

    @router.post("/_sandbox/vk/rename")
    async def rename(body: RenameBody) -> dict[str, Any]:
        """Rename an ad plan or group in every account; answers the old name too."""
        old: list[str] = []
        for account in state.accounts.values():
            for item in account.plans if body.kind == "ad_plans" else account.groups:
                if item.id == body.id:
                    old.append(item.name)
                    item.name = body.name
        if not old:
            raise HTTPException(404, f"no {body.kind} {body.id}")
        return {"renamed": len(old), "old_name": old[0]}

    @router.post("/_sandbox/vk/limits")
    async def limits(body: LimitsBody) -> dict[str, int]:
        for name in ("rps", "hourly", "daily"):
            value = getattr(body, name)
            if value is not None:
                setattr(state.limits, name, value)
        state.used.clear()
        return {"rps": state.limits.rps, "hourly": state.limits.hourly, "daily": state.limits.daily}

    @router.post("/_sandbox/vk/revise")
    async def revise_day(body: Revision) -> dict[str, int]:
        changes = body.model_dump(exclude={"date"})
        return {"revised": revise(state.accounts, body.date, **changes)}

    @router.get("/_sandbox/vk/requests")
    async def requests() -> dict[str, Any]:
        return {
            "requests": list(state.requests),
            "token_requests": dict(state.token_requests),
            "live_tokens": {
                "/".join(filter(None, o)): state.live_tokens(o) for o in _owners(state)
            },
        }

    @router.post("/_sandbox/vk/reset")
    async def reset() -> dict[str, bool]:
        state.requests.clear()
        state.token_requests.clear()
        return {"reset": True}


def _owners(state: VkSandboxState) -> set[tuple[str, str]]:
    return {t.owner for t in state.tokens.values()}


# --- OAuth2 ---------------------------------------------------------------------------------


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    # The token endpoint's error body is not documented; OAuth2's shape is what clients read.
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _issue_token(state: VkSandboxState, form: dict[str, str]) -> Response:
    grant = form.get("grant_type", "")
    state.token_requests[grant or "missing"] += 1
    client_id = form.get("client_id", "")
    if grant not in {"client_credentials", "agency_client_credentials", "refresh_token"}:
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant!r}")
    if not client_id or state.secrets.get(client_id) != form.get("client_secret"):
        return _oauth_error(401, "invalid_client", "Invalid client credentials")
    if grant == "refresh_token":
        current = next(
            (t for t in state.tokens.values() if t.refresh == form.get("refresh_token")), None
        )
        if current is None or current.owner[0] != client_id:
            return _oauth_error(400, "invalid_grant", "Unknown refresh token")
        # Refreshing replaces the access token: the old value stops working at once.
        del state.tokens[current.access]
        current.access = _new_secret()
        current.expires_at = time.time() + TOKEN_TTL_SECONDS
        state.tokens[current.access] = current
        return _token_body(current)
    username = ""
    if grant == "agency_client_credentials":
        username = form.get("agency_client_name", "")
        if username not in state.agency_clients.get(client_id, ()):
            return _oauth_error(400, "invalid_request", f"Unknown agency client {username!r}")
    owner = (client_id, username)
    if state.live_tokens(owner) >= MAX_LIVE_TOKENS:
        return _oauth_error(
            403,
            "access_denied",
            f"Token limit exceeded: at most {MAX_LIVE_TOKENS} tokens per client and user; "
            "delete them with /api/v2/oauth2/token/delete.json",
        )
    issued = _Token(_new_secret(), _new_secret(), owner, time.time() + TOKEN_TTL_SECONDS)
    state.tokens[issued.access] = issued
    return _token_body(issued)


def _new_secret() -> str:
    return secrets.token_urlsafe(30)


def _token_body(t: _Token) -> JSONResponse:
    remaining = max(0, int(t.expires_at - time.time()))
    return JSONResponse(
        {
            "access_token": t.access,
            "token_type": "bearer",
            "scope": "read_ads read_payments create_ads",
            # A string in VK's client-credentials answer.
            "expires_in": str(remaining),
            "refresh_token": t.refresh,
        }
    )


# --- API calls: auth, faults, rate limits ---------------------------------------------------


def _api_call(
    state: VkSandboxState, request: Request, handle: Callable[[Account], Response]
) -> Response:
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
    token = state.tokens.get(bearer)
    entry: dict[str, Any] = {"path": request.url.path, "params": dict(request.query_params)}
    state.requests.append(entry)
    if token is None:
        entry.update(status=401, account=None)
        return _token_error("invalid_token", "Unknown access token")
    entry["account"] = token.owner[1] or token.owner[0]
    if time.time() >= token.expires_at:
        entry["status"] = 401
        return _token_error("expired_token", "Access token is expired")
    headers, over = _rate(state, token.owner)
    if state.throttle_left > 0 or over:
        state.throttle_left = max(0, state.throttle_left - 1)
        entry["status"] = 429
        headers["X-RateLimit-RPS-Remaining"] = "0"
        if state.throttle_retry_after is not None:
            # VK documents no Retry-After; the switch lets tests check that one is honoured.
            headers["Retry-After"] = str(state.throttle_retry_after)
        return JSONResponse(
            {"error": {"code": "throttling", "message": "Too many requests, try again later"}},
            status_code=429,
            headers=headers,
        )
    if state.fail_left > 0:
        state.fail_left -= 1
        entry["status"] = state.fail_status
        return JSONResponse(
            {"error": {"code": "ERR_INTERNAL", "message": "Internal server error"}},
            status_code=state.fail_status,
            headers=headers,
        )
    account = state.accounts[token.owner]
    response = handle(account)
    response.headers.update(headers)
    entry["status"] = response.status_code
    return response


def _token_error(code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message},
        status_code=401,
        headers={
            "WWW-Authenticate": f'Bearer realm="api", error="{code}", error_description="{message}"'
        },
    )


def _rate(state: VkSandboxState, owner: tuple[str, str]) -> tuple[dict[str, str], bool]:
    now = int(time.time())
    # Calendar windows: this second, this hour, this (UTC+3) day.
    windows = {
        "RPS": (now, state.limits.rps),
        "Hourly": (now // 3600, state.limits.hourly),
        "Daily": ((now + 3 * 3600) // 86400, state.limits.daily),
    }
    headers: dict[str, str] = {}
    over = False
    for name, (window, limit) in windows.items():
        current, count = state.used.get((owner, name), (window, 0))
        used = count + 1 if current == window else 1
        state.used[(owner, name)] = (window, used)
        over = over or used > limit
        headers[f"X-RateLimit-{name}-Limit"] = str(limit)
        headers[f"X-RateLimit-{name}-Remaining"] = str(max(0, limit - used))
    return headers, over


def _validation_error(field_name: str, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": "validation_failed",
                "message": "Validation failed",
                "fields": {field_name: {"code": code, "message": message}},
            }
        },
        status_code=400,
    )


def _stat_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# --- Collections ----------------------------------------------------------------------------


def _collection_endpoint(state: VkSandboxState, resource: str) -> Callable[..., Any]:
    kind = "ad_groups" if resource == "campaigns" else resource

    async def endpoint(request: Request) -> Response:
        return _api_call(state, request, lambda account: _collection(account, kind, request))

    endpoint.__name__ = f"list_{resource}"
    return endpoint


def _collection(account: Account, kind: str, request: Request) -> Response:
    query = request.query_params
    try:
        limit = int(query.get("limit", "20"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        return _validation_error("limit", "invalid", "A valid integer is required.")
    if not 1 <= limit <= MAX_LIMIT:
        return _validation_error(
            "limit", "max_value", f"Ensure this value is less than or equal to {MAX_LIMIT}."
        )
    if offset < 0:
        return _validation_error("offset", "min_value", "Ensure this value is non-negative.")
    items = objects_json(account, kind)
    known = set(items[0]) if items else set(_DEFAULT_FIELDS[kind])
    fields = [f for f in query.get("fields", "").split(",") if f] or list(_DEFAULT_FIELDS[kind])
    unknown = [f for f in fields if f not in known]
    if unknown:
        return _validation_error(
            "fields", "invalid_choice", f"Unknown fields: {', '.join(unknown)}"
        )
    status_filtered = False
    for param, value in query.items():
        if not param.startswith("_"):
            continue
        name, _, op = param[1:].partition("__")
        if name not in known or op not in {"", "in", "ne"}:
            return _validation_error(param, "invalid", f"Unknown filter {param}")
        status_filtered = status_filtered or name == "status"
        wanted = set(value.split(",")) if op == "in" else {value}
        keep = op != "ne"
        items = [i for i in items if (str(i[name]) in wanted) is keep]
    if not status_filtered:
        items = [i for i in items if i["status"] != "deleted"]
    items.sort(key=lambda i: int(i["id"]))
    page = [{f: i[f] for f in fields} for i in items[offset : offset + limit]]
    return JSONResponse({"count": len(items), "offset": offset, "items": page})


# --- Statistics -----------------------------------------------------------------------------


def _day_stats(state: VkSandboxState, account: Account, objects: str, request: Request) -> Response:
    if objects != "banners":
        return _stat_error(
            404, "ERR_WRONG_RESOURCE", f"Statistics for {objects} are not served here"
        )
    query = request.query_params
    raw_ids = ",".join(query.getlist("id"))
    try:
        ids = [int(i) for i in raw_ids.split(",") if i.strip()]
        since = date.fromisoformat(query["date_from"])
        to = date.fromisoformat(query.get("date_to") or state.today.isoformat())
    except KeyError:
        return _stat_error(400, "ERR_WRONG_DATE", "date_from is required")
    except ValueError:
        return _stat_error(
            400, "ERR_WRONG_PARAMETER", "id and dates must be integers and YYYY-MM-DD"
        )
    if not ids:
        return _stat_error(400, "ERR_WRONG_PARAMETER", "id is required")
    if len(ids) > MAX_STAT_IDS:
        return _stat_error(
            400, "ERR_LIMIT_EXCEEDED", f"Too many ids: at most {MAX_STAT_IDS} objects"
        )
    if since > to or (state.today - since).days > 366:
        return _stat_error(400, "ERR_WRONG_DATE", "Wrong date range")
    foreign = [i for i in ids if i not in account.stats]
    if foreign:
        return _stat_error(400, "ERR_WRONG_BANNERS", f"Wrong banners: {foreign[:10]}")
    items, everything = [], []
    for banner_id in ids:
        days = [since + timedelta(days=n) for n in range((to - since).days + 1)]
        # One row per date, zero days included, as VK's sample shows.
        stats = [account.stats[banner_id].get(day, Stat(0, 0, _ZERO)) for day in days]
        everything += stats
        rows = [
            {"date": d.isoformat(), "base": base_json(s)} for d, s in zip(days, stats, strict=True)
        ]
        served: list[dict[str, Any]] | dict[str, Any] = rows
        if banner_id in state.malformed_banners:
            served = {d.isoformat(): row for d, row in zip(days, rows, strict=True)}
        items.append({"id": banner_id, "rows": served, "total": {"base": base_json(total(stats))}})
    return JSONResponse({"items": items, "total": {"base": base_json(total(everything))}})
