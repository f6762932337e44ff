"""Gmail API v1 over httpx: search messages, read each one with its CSV attachments.

Three endpoints (shared/upstream-apis.md §5): `messages.list` paged by `nextPageToken`
(`messages` absent when nothing matches), `messages.get?format=full`, and
`messages.attachments.get` for parts Gmail does not send inline. The access token comes from
`GMAIL_DIR/token.json` (`oauth.TokenFile`): refreshed when expired, and once more when Gmail
answers 401. 429, 5xx and rate-limit 403s are retried under `RETRY` (exponential backoff,
at least what `Retry-After` asks); what is still failing after the last attempt fails the run as
transient; no retry starts after the run's deadline and no request waits longer than the time
it leaves. Headers (senders, recipients, subjects) are dropped here: only the parts the source
reads leave this module. Knows nothing of ClickHouse.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import quote

import httpx
from tenacity import RetryCallState
from zakaz_common.deadline import Deadline
from zakaz_common.errors import AuthError, PermanentError, TransientError
from zakaz_common.redact import scrub
from zakaz_common.retry import RetryPolicy

from zakaz_gmail.mime import MailMessage, Part, b64url_decode, leaf_parts
from zakaz_gmail.oauth import TokenFile
from zakaz_gmail.settings import CONSENT_FIX, GmailSettings

log = logging.getLogger(__name__)

API_PATH: Final = "/gmail/v1/users/me"
"""The authorised user's mailbox, under the host root of `GMAIL_API_URL`."""

MAX_WAIT_SECONDS: Final = 60.0
"""Longest single backoff wait, whatever `Retry-After` asks (the job has a timeout)."""

RATE_LIMIT_REASONS: Final = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "backendError"}
)
"""Reasons of a 403 that are quota or load, not permission: Google uses 403 or 429 for them."""

RETRY: Final = RetryPolicy(max_wait=MAX_WAIT_SECONDS, honour=("Retry-After",))
"""429, 5xx, rate-limit 403s and network failures; attempts and base come from the settings."""

SCOPE_REASONS: Final = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})


class MessageGone(PermanentError):
    """A listed message (or its attachment) was deleted before it could be read."""


@dataclass
class ApiStats:
    """What reading cost: requests by kind, throttled and failed answers, waits, refreshes."""

    requests: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    server_errors: int = 0
    retries: int = 0
    backoff_seconds: float = 0.0

    def as_counts(self, token_refreshes: int) -> dict[str, Any]:
        """Counts for the run's metrics."""
        return {
            "api_requests": sum(self.requests.values()),
            "api_list_pages": self.requests["list"],
            "api_message_gets": self.requests["get"],
            "api_attachment_gets": self.requests["attachment"],
            "api_throttled": self.throttled,
            "api_server_errors": self.server_errors,
            "api_retries": self.retries,
            "api_backoff_seconds": round(self.backoff_seconds, 3),
            "token_refreshes": token_refreshes,
        }


def _error(response: httpx.Response) -> tuple[str, set[str]]:
    """Google's error message and reasons from an error body (empty when not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200], set()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(body)[:200], set()
    reasons = {str(e.get("reason", "")) for e in error.get("errors") or [] if isinstance(e, dict)}
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            reasons.add(str(detail["reason"]))
    return str(error.get("message", ""))[:300], reasons


class GmailClient:
    """The authorised user's mailbox: search it and read messages."""

    def __init__(self, settings: GmailSettings, deadline: Deadline | None = None) -> None:
        self.settings = settings
        self.deadline = deadline or Deadline.unbounded()
        self.stats = ApiStats()
        self.retry = replace(RETRY, attempts=settings.retry_attempts, base=settings.backoff_seconds)
        self._http = httpx.Client(
            base_url=settings.api_url,
            timeout=httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "zakaz-gmail/0.1"},
        )
        try:
            self.token = TokenFile(
                settings.token_file(),
                self._http,
                self.deadline,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.timeout_seconds,
            )
        except BaseException:
            self._http.close()
            raise

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> GmailClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def message_ids(self, query: str) -> Iterator[str]:
        """Ids of the messages matching a Gmail search, newest first, page after page."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"q": query, "maxResults": self.settings.page_size}
            if token:
                params["pageToken"] = token
            page = self._get("list", f"{API_PATH}/messages", params)
            for entry in page.get("messages", []):
                yield str(entry["id"])
            token = page.get("nextPageToken")
            if not token:
                return
            if token in seen:
                raise PermanentError(f"Gmail returned page token {token!r} twice; paging stopped")
            seen.add(token)

    def message(self, msg_id: str) -> MailMessage:
        """One message with the bodies of its HTML and CSV parts (other attachments not fetched)."""
        body = self._get("get", f"{API_PATH}/messages/{quote(msg_id)}", {"format": "full"})
        return MailMessage(
            msg_id=str(body.get("id", msg_id)),
            internal_date_ms=int(body.get("internalDate") or 0),
            parts=tuple(self._with_body(msg_id, p) for p in leaf_parts(body.get("payload") or {})),
        )

    def _with_body(self, msg_id: str, part: Part) -> Part:
        """The part with its body fetched when the source reads it and Gmail did not inline it."""
        if part.kind in ("html", "csv") and part.data is None and part.attachment_id:
            return replace(part, data=self.attachment(msg_id, part.attachment_id))
        return part

    def attachment(self, msg_id: str, attachment_id: str) -> bytes:
        """An attachment's bytes."""
        path = f"{API_PATH}/messages/{quote(msg_id)}/attachments/{quote(attachment_id)}"
        body = self._get("attachment", path, {})
        return b64url_decode(str(body.get("data", "")))

    def _get(self, kind: str, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.retry.call(
            self.deadline,
            f"reading Gmail ({kind})",
            self._get_once,
            kind,
            path,
            params,
            before_sleep=self._before_sleep,
        )

    def _send(self, kind: str, path: str, params: Mapping[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token.bearer()}"}
        timeout = self.deadline.http_timeout(
            connect=self.settings.connect_timeout,
            read=self.settings.timeout_seconds,
            what=f"reading Gmail ({kind})",
        )
        self.stats.requests[kind] += 1
        try:
            return self._http.get(path, params=dict(params), headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise TransientError(f"Gmail did not answer {kind} within {timeout.read:g} s") from None
        except httpx.TransportError as exc:
            raise TransientError(
                f"cannot reach Gmail at {self.settings.api_url}: {type(exc).__name__}"
            ) from None

    def _get_once(self, kind: str, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        response = self._send(kind, path, params)
        if response.status_code == 401:
            # The access token died before its expiry (revoked, server clock): refresh once.
            self.token.refresh()
            response = self._send(kind, path, params)
        if response.status_code == 200:
            body = response.json()
            if not isinstance(body, dict):
                raise PermanentError(f"Gmail answered {kind} with a non-object body")
            return body
        raise self._failure(kind, response)

    def _failure(self, kind: str, response: httpx.Response) -> Exception:
        status = response.status_code
        message, reasons = _error(response)
        if status == 429 or (status == 403 and reasons & RATE_LIMIT_REASONS):
            self.stats.throttled += 1
            return TransientError(
                f"Gmail rate limit on {kind} ({status} {', '.join(sorted(reasons)) or ''}): "
                f"{message}",
                retry_after=self.retry.asked(response.headers),
            )
        if status >= 500:
            self.stats.server_errors += 1
            return TransientError(
                f"Gmail answered {status} on {kind}: {message}",
                retry_after=self.retry.asked(response.headers),
            )
        if status == 401:
            return AuthError(
                f"Gmail refused a freshly refreshed access token (401: {message}): {CONSENT_FIX}"
            )
        if status == 403 and reasons & SCOPE_REASONS:
            return AuthError(
                f"the token in GMAIL_DIR lacks the gmail.readonly scope (403: {message}): "
                "run `zakaz gmail-auth` and allow reading mail"
            )
        if status == 403:
            return AuthError(
                f"Gmail answered 403 on {kind}: {message} (is the Gmail API enabled in the "
                "Google Cloud project of the OAuth client?)"
            )
        if status == 404 and kind in ("get", "attachment"):
            return MessageGone(f"Gmail has no such {kind}: it was deleted after it was listed")
        if status == 400:
            return PermanentError(
                f"Gmail refused the {kind} request (400: {message}): check GMAIL_QUERY"
            )
        return PermanentError(
            f"Gmail answered {status} on {kind}: {message} (check GMAIL_API_URL="
            f"{self.settings.api_url})"
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.stats.retries += 1
        self.stats.backoff_seconds += wait
        log.warning(
            "Gmail: %s (attempt %d of %d); retrying in %.2f s",
            scrub(str(exc)),
            state.attempt_number,
            self.settings.retry_attempts,
            wait,
        )
