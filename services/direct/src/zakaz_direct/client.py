"""Talking to Yandex Direct API v5: the Reports service (offline queue) and `ads.get`.

Yields raw records (report rows as text, ads as JSON objects); knows nothing of ClickHouse.
Retries are declared as two `RetryPolicy`s: transient failures a few times with backoff
(at least what `Retry-After` asks); an offline report's 201/202 and a full report queue (9000)
until the report deadline, each wait what Direct asked (`retryIn`); no wait longer than
`max_wait` seconds. Permanent errors (53, 54, 58,
3000, …) are raised at once: one request, no retry storm. Everything is bounded by the run's
`Deadline`: no request waits longer than the time left, no retry or poll starts after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Final

import httpx
from tenacity import RetryCallState
from zakaz_common.deadline import Deadline
from zakaz_common.errors import AuthError, PermanentError, StructuralError, TransientError
from zakaz_common.retry import RetryPolicy

from zakaz_direct.codes import QueueFull, api_error
from zakaz_direct.reports import REPORT_HEADERS, ReportRequest, parse_tsv
from zakaz_direct.transform import AD_LINK_FIELDS

log = logging.getLogger(__name__)

#: Attempts of one request that keeps failing transiently (5xx, 52, 1000–1002, network).
MAX_ATTEMPTS: Final = 5

#: `ads.get` returns at most 10 000 objects per call and takes at most 10 000 `Ids`.
ADS_PAGE_LIMIT: Final = 10_000

#: Seconds to wait when Direct gives no `retryIn` (a 201/202 without it, or a full queue).
DEFAULT_RETRY_IN: Final = 10.0

#: A request failing transiently: exponential from 1 s, at least what `Retry-After` asks, at
#: most the client's `max_wait`. A full queue is waited out by the poll, not here.
RETRY: Final = RetryPolicy(
    attempts=MAX_ATTEMPTS,
    base=1.0,
    max_wait=60.0,
    honour=("Retry-After",),
    transient=lambda exc: isinstance(exc, TransientError) and not isinstance(exc, QueueFull),
)

#: An offline report (201/202) or a full queue (9000): ask again after `retryIn` seconds
#: (`DEFAULT_RETRY_IN` without it), no backoff of our own, until the client's report timeout.
POLL: Final = RetryPolicy(
    attempts=None,
    base=0.0,
    jitter=0.0,
    honour=("retryIn",),
    transient=lambda exc: isinstance(exc, ReportPending | QueueFull),
)

#: Seconds to open a connection: Direct's front answers the handshake at once when it is up.
CONNECT_TIMEOUT: Final = 5.0

#: Seconds Direct may stay silent on one request: an online report is built while the request
#: waits (longer ones come back as 201/202, or 502 past Direct's own limit).
READ_TIMEOUT: Final = 60.0


@dataclass
class Units:
    """API points as Direct's `Units: spent/remaining/daily_limit` header reports them."""

    spent: int = 0
    remaining: int | None = None
    daily_limit: int | None = None

    def record(self, header: str | None) -> None:
        """Add one response's header."""
        if not header:
            return
        parts = header.split("/")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            return
        spent, remaining, limit = (int(p) for p in parts)
        self.spent += spent
        self.remaining, self.daily_limit = remaining, limit


@dataclass
class ClientStats:
    """What the client did, for the run's counts."""

    requests: int = 0
    #: Offline report answers 201 (queued) and 202 (building).
    report_polls: int = 0
    #: Answers 9000: the advertiser's report queue was full.
    queue_full: int = 0
    #: Requests repeated after a transient failure.
    retries: int = 0
    units: Units = field(default_factory=Units)


class ReportPending(Exception):
    """An offline report is queued (201) or building (202): ask again with the same body."""

    def __init__(self, status: int, retry_in: float | None, in_queue: str | None) -> None:
        super().__init__(f"report not ready (HTTP {status})")
        self.status = status
        #: Seconds until the next poll: Direct's `retryIn`, or `DEFAULT_RETRY_IN`.
        self.retry_after = DEFAULT_RETRY_IN if retry_in is None else retry_in
        self.in_queue = in_queue


class DirectClient:
    """An httpx client of one advertiser's Direct account."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        login: str,
        max_wait: float,
        report_timeout: float,
        page_limit: int = ADS_PAGE_LIMIT,
        transport: httpx.BaseTransport | None = None,
        deadline: Deadline | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.login = login
        self.deadline = deadline or Deadline.unbounded()
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_wait = max_wait
        self.report_timeout = report_timeout
        self.page_limit = page_limit
        self.stats = ClientStats()
        self.retry = replace(RETRY, max_wait=max_wait)
        self.poll = replace(POLL, max_wait=max_wait, budget=report_timeout)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {token}",
                "Client-Login": login,
                "Accept-Language": "ru",
                "Content-Type": "application/json; charset=utf-8",
            },
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
        )

    def __enter__(self) -> DirectClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- Reports -------------------------------------------------------------------------

    def report(self, request: ReportRequest) -> list[dict[str, str]]:
        """The report's rows, waiting through Direct's offline queue if it uses it."""
        try:
            response = self.poll.call(
                self.deadline,
                f"waiting for Direct report {request.name}",
                self._report_once,
                request,
                before_sleep=self._log_queue_wait,
            )
        except ReportPending as pending:
            raise TransientError(
                f"Direct report {request.name} was still not ready after "
                f"{self.report_timeout:.0f} s (reportsInQueue={pending.in_queue}); "
                "RQ's retry of this run polls the same report again"
            ) from None
        try:
            text = response.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StructuralError(f"Direct report {request.name} is not UTF-8: {exc}") from exc
        return parse_tsv(text)

    def _report_once(self, request: ReportRequest) -> httpx.Response:
        try:
            response = self._send("reports", request.body, REPORT_HEADERS)
        except QueueFull as full:
            self.stats.queue_full += 1
            if full.retry_after is None:
                full.retry_after = DEFAULT_RETRY_IN
            raise
        if response.status_code in {201, 202}:
            self.stats.report_polls += 1
            raise ReportPending(
                response.status_code,
                self.poll.asked(response.headers),
                response.headers.get("reportsInQueue"),
            )
        return response

    def _log_queue_wait(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if isinstance(exc, ReportPending):
            what = "queued" if exc.status == 201 else "being built"
            log.info(
                "Direct report %s offline (reportsInQueue=%s); polling again in %.1f s",
                what,
                exc.in_queue,
                wait,
            )
        else:
            log.warning("Direct report queue is full (error 9000); asking again in %.1f s", wait)

    # -- Ads -----------------------------------------------------------------------------

    def ads(self, ad_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """Every ad of `ad_ids` (digits) with its link fields, page by page."""
        ids = sorted({int(i) for i in ad_ids if i.isascii() and i.isdigit()})
        for chunk in _chunks(ids, ADS_PAGE_LIMIT):
            yield from self._ads_chunk(chunk)

    def _ads_chunk(self, ids: list[int]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            params: dict[str, Any] = {
                "SelectionCriteria": {"Ids": ids},
                "FieldNames": ["Id", "CampaignId", "AdGroupId", "State", "Status", "Type"],
                "Page": {"Limit": self.page_limit, "Offset": offset},
            }
            for kind, link in AD_LINK_FIELDS.items():
                params[f"{kind}FieldNames"] = [link]
            result = self._call("ads", {"method": "get", "params": params})
            yield from result.get("Ads") or []
            limited_by = result.get("LimitedBy")
            if limited_by is None:
                return
            if not isinstance(limited_by, int) or limited_by <= offset:
                raise PermanentError(
                    f"Direct ads.get paging did not advance (LimitedBy={limited_by!r} after "
                    f"Offset={offset}); stopping rather than looping"
                )
            offset = limited_by

    def _call(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(service, body, {})
        try:
            payload = response.json()
        except ValueError as exc:
            raise StructuralError(f"Direct {service} answered non-JSON: {exc}") from exc
        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, dict):
            raise StructuralError(f"Direct {service} answered without a result object")
        return result

    # -- HTTP ----------------------------------------------------------------------------

    def _send(self, service: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return self.retry.call(
            self.deadline,
            f"asking Direct {service}",
            self._post_once,
            service,
            body,
            headers,
            before_sleep=self._log_retry,
        )

    def _post_once(
        self, service: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        timeout = self.deadline.http_timeout(
            connect=self.connect_timeout, read=self.read_timeout, what=f"asking Direct {service}"
        )
        self.stats.requests += 1
        try:
            response = self._http.post(
                service,
                content=json.dumps(body, ensure_ascii=False).encode(),
                headers=headers,
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"Direct {service} did not answer within {timeout.read:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(f"Direct {service} unreachable: {type(exc).__name__}") from exc
        self.stats.units.record(response.headers.get("Units"))
        _raise_for_error(service, response, self.login)
        return response

    def _log_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "Direct request failed (%s); attempt %d in %.1f s", exc, state.attempt_number + 1, wait
        )


def _raise_for_error(service: str, response: httpx.Response, login: str) -> None:
    """Raise the zakaz error an answer stands for; return for a usable one."""
    status = response.status_code
    error = _error_body(response)
    if error is not None:
        code = _int(error.get("error_code"))
        if code is not None:
            raise api_error(
                code,
                str(error.get("error_string") or ""),
                str(error.get("error_detail") or ""),
                login=login,
            )
    if status in {200, 201, 202}:
        return
    if status == 502:
        raise TransientError(
            f"Direct {service} answered 502: the report took longer than Direct allows; a "
            "shorter window (zakaz backfill in smaller chunks) builds faster"
        )
    if status == 429 or status >= 500:
        raise TransientError(
            f"Direct {service} answered HTTP {status}",
            retry_after=RETRY.asked(response.headers),
        )
    if status in {401, 403}:
        raise AuthError(
            f"Direct {service} answered HTTP {status}: check DIRECT_TOKEN and DIRECT_CLIENT_LOGIN"
        )
    raise PermanentError(f"Direct {service} answered HTTP {status} without an error body")


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    if response.status_code in {201, 202} or "json" not in response.headers.get("content-type", ""):
        return None
    try:
        payload = response.json()
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else None


def _int(value: object) -> int | None:
    # Reports send error_code as a string, the JSON services as a number.
    try:
        return int(str(value))
    except ValueError:
        return None


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
