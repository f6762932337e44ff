"""Gmail API v1 sandbox: `messages.list`, `messages.get` and `messages.attachments.get`.

Paths, parameters, bodies and errors are Google's (shared/upstream-apis.md §5): bearer tokens of
the installed-app grant from the sandbox's `/token` (`google_oauth.py`, same app; 401 when
expired, 403 without the gmail scope), `q` with `from:`, `to:`, `subject:`, `newer_than:`,
`older_than:`, `after:`/`before:` (dates in the mailbox's Moscow time, or epoch seconds),
`has:attachment`, `filename:` and free words; newest first, paged by `nextPageToken`, no
`messages` key when nothing matches; nested multipart bodies in base64url without padding;
attachments by id; 5 quota units a call and 429 `rateLimitExceeded` past the per-user quota.

Control endpoints (`/_sandbox/gmail/...`): add a message, delete one (optionally still listed),
inject faults (429 storms, rate-limit 403s, 503s), set the quota, issue OAuth files for a
`GMAIL_DIR` (`write_gmail_dir`), revoke them (the next refresh answers `invalid_grant`), read
the request log and the truth, reset. The mailbox is `gmail_data.build_mailbox(today)`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final

import httpx
from fastapi import APIRouter, Body, HTTPException, Query, Request

from zakaz_sandbox.gmail_data import (
    MSK,
    QTICKETS,
    RECIPIENT,
    Kind,
    Line,
    Mail,
    b64url,
    build_mailbox,
    day_lines,
    make_mail,
)
from zakaz_sandbox.google_oauth import (
    GMAIL_READONLY,
    GoogleApiError,
    GoogleErrorRoute,
    oauth_state,
    require_token,
)
from zakaz_sandbox.season import season

_SCOPES: Final = (
    GMAIL_READONLY,
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
)
_bearer = require_token(*_SCOPES)
"""The request's token with a Gmail scope, or Google's 401/403 (checked inside `serve`, so that
refused calls are in the request log too)."""

UNITS_PER_CALL: Final = 5
"""Quota units of `messages.list`, `messages.get` and `messages.attachments.get` alike."""

USER_UNITS_PER_MINUTE: Final = 15_000
"""Gmail's per-user quota."""

MAX_RESULTS: Final = 500
"""`maxResults` above this is served as this."""

_PREFIX: Final = "/_sandbox/gmail"
_TERM: Final = re.compile(r'(-?)(?:([A-Za-z_]+):)?("[^"]*"|\S+)')
_PERIOD: Final = re.compile(r"(\d+)([dmy])", re.I)
_DAY_FORMATS: Final = ("%Y/%m/%d", "%Y-%m-%d", "%m/%d/%Y")


def _not_found() -> GoogleApiError:
    message = "Requested entity was not found."
    return GoogleApiError(
        404,
        message,
        "NOT_FOUND",
        errors=[{"message": message, "domain": "global", "reason": "notFound"}],
    )


def _bad_request(message: str) -> GoogleApiError:
    return GoogleApiError(
        400,
        message,
        "INVALID_ARGUMENT",
        errors=[{"message": message, "domain": "global", "reason": "invalidArgument"}],
    )


def _rate_limited(status: int, retry_after: float | None) -> GoogleApiError:
    until = datetime.now(UTC) + timedelta(seconds=retry_after or 1)
    message = f"User-rate limit exceeded.  Retry after {until:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"
    reason = "rateLimitExceeded" if status == 429 else "userRateLimitExceeded"
    return GoogleApiError(
        status,
        message,
        "RESOURCE_EXHAUSTED" if status == 429 else "PERMISSION_DENIED",
        reason="RATE_LIMIT_EXCEEDED",
        errors=[{"message": message, "domain": "usageLimits", "reason": reason}],
        headers={"Retry-After": f"{retry_after:g}"} if retry_after is not None else None,
    )


@dataclass
class GmailState:
    """One router's mailbox, faults, quota, page tokens, request log and issued grants."""

    today: date | None
    mails: list[Mail]
    #: Messages that answer 404 (deleted); those also in `hidden` are not listed either.
    deleted: set[str] = field(default_factory=set)
    hidden: set[str] = field(default_factory=set)
    page_tokens: dict[str, tuple[str, int]] = field(default_factory=dict)
    rate_limit_next: int = 0
    forbidden_next: int = 0
    server_errors_next: int = 0
    retry_after: float | None = None
    units_per_minute: int = USER_UNITS_PER_MINUTE
    units: dict[str, deque[float]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    added: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """The mailbox's clock: real time, or noon (Moscow) of the reference day when given."""
        if self.today is None:
            return time.time()
        return datetime(
            self.today.year, self.today.month, self.today.day, 12, tzinfo=MSK
        ).timestamp()

    def admit(self, user: str) -> GoogleApiError | None:
        """Count one call's units for `user`, or the error Gmail answers instead."""
        with self.lock:
            if self.server_errors_next:
                self.server_errors_next -= 1 if self.server_errors_next > 0 else 0
                return GoogleApiError(
                    503,
                    "The service is currently unavailable.",
                    "UNAVAILABLE",
                    errors=[
                        {"message": "Backend Error", "domain": "global", "reason": "backendError"}
                    ],
                )
            if self.rate_limit_next:
                self.rate_limit_next -= 1 if self.rate_limit_next > 0 else 0
                return _rate_limited(429, self.retry_after)
            if self.forbidden_next:
                self.forbidden_next -= 1 if self.forbidden_next > 0 else 0
                return _rate_limited(403, self.retry_after)
            clock = time.monotonic()
            window = self.units.setdefault(user, deque())
            while window and window[0] <= clock - 60:
                window.popleft()
            if (len(window) + 1) * UNITS_PER_CALL > self.units_per_minute:
                return _rate_limited(429, None)
            window.append(clock)
            return None

    def serve(self, request: Request, user_id: str, kind: str) -> None:
        """Log an API call, then check its token, faults and quota (raising Google's error)."""
        entry: dict[str, Any] = {
            "kind": kind,
            "path": request.url.path,
            "query": str(request.url.query),
        }
        self.log.append(entry)
        try:
            token = _bearer(request)
        except GoogleApiError as exc:
            entry["status"] = exc.code
            raise
        refused = self.admit(token.subject)
        if refused is None and user_id not in ("me", token.subject):
            refused = GoogleApiError(
                403, f"Delegation denied for {token.subject}", "PERMISSION_DENIED"
            )
        entry["status"] = refused.code if refused else 200
        if refused is not None:
            raise refused

    def page(self, q: str, size: int, page_token: str | None) -> dict[str, Any]:
        """One page of `messages.list`: no `messages` key when it is empty."""
        offset = 0
        if page_token:
            saved = self.page_tokens.get(page_token)
            if saved is None or saved[0] != q:
                raise _bad_request("Invalid pageToken")
            offset = saved[1]
        now = self.now()
        found = [m for m in self.mails if m.msg_id not in self.hidden and matches(m, q, now)]
        body: dict[str, Any] = {}
        if page := found[offset : offset + size]:
            body["messages"] = [{"id": m.msg_id, "threadId": m.msg_id} for m in page]
        if offset + size < len(found):
            next_token = f"{secrets.randbelow(10**20):020d}"
            self.page_tokens[next_token] = (q, offset + size)
            body["nextPageToken"] = next_token
        body["resultSizeEstimate"] = len(found)
        return body

    def mail(self, msg_id: str) -> Mail:
        """A message by id, or Gmail's 404."""
        found = next((m for m in self.mails if m.msg_id == msg_id), None)
        if found is None or msg_id in self.deleted:
            raise _not_found()
        return found


def _period_seconds(value: str) -> float | None:
    match = _PERIOD.fullmatch(value)
    if match is None:
        return None
    days = {"d": 1, "m": 30, "y": 365}[match[2].lower()]
    return int(match[1]) * days * 86_400.0


def _instant(value: str) -> float | None:
    """`after:`/`before:` values: epoch seconds, or a day starting at Moscow midnight."""
    if value.isdigit() and len(value) > 8:
        return float(value)
    for fmt in _DAY_FORMATS:
        try:
            day = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        return datetime(day.year, day.month, day.day, tzinfo=MSK).timestamp()
    return None


def _term_matches(mail: Mail, op: str, value: str, now: float) -> bool:
    at = mail.internal_ms / 1000
    text = value.lower()
    if op == "from":
        return text in mail.sender.lower()
    if op == "to":
        return text in RECIPIENT.lower()
    if op == "subject":
        return text in mail.subject.lower()
    if op in ("newer_than", "older_than"):
        period = _period_seconds(value)
        if period is None:
            return False
        return at > now - period if op == "newer_than" else at < now - period
    if op in ("after", "before", "newer", "older"):
        instant = _instant(value)
        if instant is None:
            return False
        return at >= instant if op in ("after", "newer") else at < instant
    if op == "has":
        return text == "attachment" and mail.has_attachment
    if op == "filename":
        return any(text in name.lower() for name in mail.filenames)
    if op in ("in", "is", "label", "category"):
        return True
    words = f"{mail.subject} {mail.snippet} {mail.sender}".lower()
    return (f"{op}:{text}" if op else text) in words


def matches(mail: Mail, query: str, now: float) -> bool:
    """Whether a message matches a Gmail search (every term must; `-term` negates)."""
    for negated, op, raw in _TERM.findall(query):
        ok = _term_matches(mail, op.lower(), raw.strip('"'), now)
        if ok == bool(negated):
            return False
    return True


def _message_body(mail: Mail, fmt: str, metadata_headers: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": mail.msg_id,
        "threadId": mail.msg_id,
        "labelIds": ["INBOX", "CATEGORY_UPDATES"],
        "snippet": mail.snippet,
        "historyId": str(900_000 + mail.internal_ms // 1_000_000 % 100_000),
        "internalDate": str(mail.internal_ms),
        "sizeEstimate": 2_000 + sum(len(a) for a in mail.attachments.values()) * 4 // 3,
    }
    if fmt == "full":
        body["payload"] = mail.payload
    elif fmt == "metadata":
        wanted = {h.lower() for h in metadata_headers}
        headers = [h for h in mail.payload["headers"] if not wanted or h["name"].lower() in wanted]
        body["payload"] = {
            "partId": "",
            "mimeType": mail.payload["mimeType"],
            "filename": "",
            "headers": headers,
        }
    return body


def create_router(*, today: date | None = None) -> APIRouter:
    """The Gmail API (`/gmail/v1/users/me/...`) over a mailbox built for `today`."""
    state = GmailState(today, build_mailbox(today))
    router = APIRouter(route_class=GoogleErrorRoute)

    @router.get("/gmail/v1/users/{user_id}/messages")
    def list_messages(
        request: Request,
        user_id: str,
        q: str = "",
        max_results: Annotated[int, Query(alias="maxResults", ge=1)] = 100,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        """`users.messages.list`: ids of matching messages, newest first, paged."""
        state.serve(request, user_id, "list")
        return state.page(q, min(max_results, MAX_RESULTS), page_token)

    @router.get("/gmail/v1/users/{user_id}/messages/{msg_id}")
    def get_message(
        request: Request,
        user_id: str,
        msg_id: str,
        fmt: Annotated[str, Query(alias="format")] = "full",
        metadata_headers: Annotated[list[str] | None, Query(alias="metadataHeaders")] = None,
    ) -> dict[str, Any]:
        """`users.messages.get` in format `full`, `metadata` or `minimal`."""
        state.serve(request, user_id, "get")
        if fmt not in ("full", "metadata", "minimal"):
            raise _bad_request(
                f"Invalid value at 'format' ({fmt}): the sandbox serves full, metadata, minimal"
            )
        return _message_body(state.mail(msg_id), fmt, metadata_headers or [])

    @router.get("/gmail/v1/users/{user_id}/messages/{msg_id}/attachments/{attachment_id}")
    def get_attachment(
        request: Request, user_id: str, msg_id: str, attachment_id: str
    ) -> dict[str, Any]:
        """`users.messages.attachments.get`: the body of a part Gmail did not inline."""
        state.serve(request, user_id, "attachment")
        data = state.mail(msg_id).attachments.get(attachment_id)
        if data is None:
            raise _bad_request("Invalid attachment token")
        return {"size": len(data), "data": b64url(data)}

    _mailbox_routes(router, state)
    _fault_routes(router, state)
    return router


def _truth(mail: Mail) -> dict[str, Any]:
    return {
        "id": mail.msg_id,
        "internal_date": mail.internal_ms,
        "received_at": datetime.fromtimestamp(mail.internal_ms / 1000, MSK).isoformat(),
        "from": mail.sender,
        "subject": mail.subject,
        "kind": mail.kind,
        "readable": mail.readable,
        "bad_rows": mail.bad_rows,
        "attachments": mail.filenames,
        "sales": [
            {
                "sale_date": d.isoformat(),
                "event_id": e,
                "tickets_sold": n,
                "revenue": str(r),
                "event_name": name,
                "city": city,
            }
            for (d, e), (n, r, name, city) in sorted(mail.truth.items())
        ],
    }


def _lines(body: dict[str, Any], day: date, salt: str, today: date | None) -> list[Line]:
    shows = {str(s.event_id): s for s in season(today)}
    if body.get("rows") is None:
        return day_lines(list(shows.values()), day, salt, today)
    lines = []
    for row in body["rows"]:
        show = shows.get(str(row.get("event_id")))
        if show is None:
            raise HTTPException(
                422, f"no show with event_id {row.get('event_id')!r}; known: {sorted(shows)}"
            )
        if row.get("event_name") is not None:
            # The name as the report typed it (a clerk's edit, a broken export).
            show = dataclasses.replace(show, name=str(row["event_name"]))
        lines.append(
            Line(
                day,
                show,
                int(row["tickets_sold"]),
                Decimal(str(row["revenue"])),
                str(row.get("city", show.city_display)),
            )
        )
    return lines


def _mailbox_routes(router: APIRouter, state: GmailState) -> None:
    prefix = _PREFIX

    @router.get(prefix)
    def describe() -> dict[str, Any]:
        """The mailbox: messages (newest first) with kind and date."""
        return {
            "messages": [
                {
                    "id": m.msg_id,
                    "kind": m.kind,
                    "subject": m.subject,
                    "internal_date": m.internal_ms,
                }
                for m in state.mails
            ],
            "deleted": sorted(state.deleted),
        }

    @router.get(f"{prefix}/truth")
    def truth(q: str = "") -> dict[str, Any]:
        """What a correct reader concludes from each message (matching `q` when given)."""
        now = state.now()
        return {"messages": [_truth(m) for m in state.mails if not q or matches(m, q, now)]}

    @router.post(f"{prefix}/messages")
    def add_message(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Deliver a report: `{"kind": "html"|"csv"|"xlsx"|"no_data", "sale_date", "rows"?,
        "received_at"?, "from"?, "subject"?}` (rows: `event_id`, `tickets_sold`, `revenue`, and
        optional `city`, `event_name`)."""
        kind: Kind = body.get("kind", "html")
        if kind not in ("html", "csv", "xlsx", "no_data", "foreign"):
            raise HTTPException(422, f"unknown kind {kind!r}")
        day = date.fromisoformat(str(body["sale_date"]))
        received = (
            datetime.fromisoformat(str(body["received_at"])).astimezone(MSK)
            if body.get("received_at")
            else datetime.fromtimestamp(state.now(), MSK)
        )
        with state.lock:
            state.added += 1
            number = state.added
        mail = make_mail(
            key=f"added:{number}",
            kind=kind,
            day=day,
            lines=[] if kind == "no_data" else _lines(body, day, f"added:{number}", state.today),
            received=received,
            sender=str(body.get("from", QTICKETS)),
            subject=body.get("subject"),
        )
        with state.lock:
            state.mails = sorted(
                [*state.mails, mail], key=lambda m: (m.internal_ms, m.msg_id), reverse=True
            )
        return _truth(mail)

    @router.post(f"{prefix}/messages/delete")
    def delete_messages(body: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        """Delete messages: `{"ids": [...], "keep_listed"?: true}` (listed, but 404 on get)."""
        ids = {str(i) for i in body.get("ids", [])}
        with state.lock:
            state.deleted |= ids
            if not body.get("keep_listed"):
                state.hidden |= ids
        return {"deleted": len(ids)}


def _fault_routes(router: APIRouter, state: GmailState) -> None:
    prefix = _PREFIX

    @router.post(f"{prefix}/faults")
    def faults(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """`{"rate_limit": N, "forbidden_rate": N, "server_errors": N, "retry_after"?: s}`;
        N = -1: every call (a 429 storm)."""
        with state.lock:
            state.rate_limit_next = int(body.get("rate_limit", 0))
            state.forbidden_next = int(body.get("forbidden_rate", 0))
            state.server_errors_next = int(body.get("server_errors", 0))
            state.retry_after = body.get("retry_after")
        return {
            "rate_limit": state.rate_limit_next,
            "forbidden_rate": state.forbidden_next,
            "server_errors": state.server_errors_next,
        }

    @router.post(f"{prefix}/quota")
    def quota(body: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        """Set the per-user quota: `{"units_per_minute": 15000}` (5 units a call)."""
        with state.lock:
            state.units_per_minute = int(body.get("units_per_minute", USER_UNITS_PER_MINUTE))
            state.units.clear()
        return {"units_per_minute": state.units_per_minute}

    @router.post(f"{prefix}/credentials")
    def credentials(
        request: Request, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        """A new OAuth client and consent: `credentials.json` and `token.json` bodies for a
        `GMAIL_DIR`; `{"expired": true}` writes an already expired access token."""
        options = body or {}
        base = str(request.base_url).rstrip("/")
        oauth = oauth_state(request.app)
        grant = oauth.register_refresh_token(
            scopes=[GMAIL_READONLY], account=options.get("account", "otchety@example-events.ru")
        )
        with state.lock:
            state.grants.append(grant.refresh_token)
        access = oauth.issue(grant.account, [GMAIL_READONLY], "user")
        expiry = datetime.now(UTC) + (
            timedelta(hours=-1) if options.get("expired") else timedelta(seconds=3599)
        )
        client = {
            "client_id": grant.client_id,
            "project_id": "zakaz-etl-demo",
            "auth_uri": f"{base}/o/oauth2/auth",
            "token_uri": f"{base}/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_secret": grant.client_secret,
            "redirect_uris": ["http://localhost"],
        }
        token = {
            "token": access,
            "refresh_token": grant.refresh_token,
            "token_uri": f"{base}/token",
            "client_id": grant.client_id,
            "client_secret": grant.client_secret,
            "scopes": [GMAIL_READONLY],
            "universe_domain": "googleapis.com",
            "account": "",
            "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        return {"credentials": {"installed": client}, "token": token}

    @router.post(f"{prefix}/revoke")
    def revoke(
        request: Request, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, int]:
        """Revoke every refresh token issued here (the next refresh answers `invalid_grant`, as
        after 7 days of a "Testing" app); access tokens expire too unless `{"expire": false}`."""
        oauth = oauth_state(request.app)
        with state.lock:
            grants, state.grants = list(state.grants), []
        revoked = sum(1 for g in grants if oauth.revoke_refresh_token(g))
        expired = oauth.expire_access_tokens() if (body or {}).get("expire", True) else 0
        return {"revoked": revoked, "expired_access_tokens": expired}

    @router.get(f"{prefix}/requests")
    def requests_log() -> dict[str, Any]:
        """Every API call served, with its kind and status."""
        log = list(state.log)
        return {"requests": log, "throttled": sum(1 for e in log if e.get("status") in (403, 429))}

    @router.post(f"{prefix}/reset")
    def reset() -> dict[str, bool]:
        """Rebuild the mailbox and clear faults, quota counters, page tokens and the log."""
        with state.lock:
            state.mails = build_mailbox(state.today)
            state.deleted.clear()
            state.hidden.clear()
            state.page_tokens.clear()
            state.rate_limit_next = state.forbidden_next = state.server_errors_next = 0
            state.retry_after, state.units_per_minute = None, USER_UNITS_PER_MINUTE
            state.units.clear()
            state.log.clear()
        return {"reset": True}


def write_gmail_dir(gmail_dir: Path, base_url: str, *, expired: bool = False) -> Path:
    """Ask a running sandbox for OAuth files and write `credentials.json` and `token.json`
    (mode 600) into `gmail_dir`, pointing at it; returns the token file's path."""
    response = httpx.post(
        f"{base_url.rstrip('/')}{_PREFIX}/credentials", json={"expired": expired}, timeout=30
    )
    response.raise_for_status()
    issued = response.json()
    gmail_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, content in (
        ("credentials.json", issued["credentials"]),
        ("token.json", issued["token"]),
    ):
        fd = os.open(gmail_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(content, indent=2))
    return gmail_dir / "token.json"
