"""gspread's HTTP client made fit for the ETL: rate-limited, retrying, pointed at any host.

- `SheetsHTTPClient` rewrites gspread's Google host to `SHEETS_API_URL` (gspread copies its
  URLs at import, so patching them does not work), passes every request — retries included —
  through a `ReadLimiter`, and retries 408/429/5xx and network failures under `RETRY`:
  exponential backoff with jitter that never waits less than a `Retry-After` asks. No attempt
  starts after the run's deadline, and no request (nor the wait for quota) lasts longer than
  the time it leaves.
- `TokenEndpointRequest` is the only transport google-auth gets: it reaches the key file's
  `token_uri` and nothing else, within the same deadline.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Final

import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as AuthRequest
from gspread.exceptions import APIError
from gspread.http_client import FileType, HTTPClient, ParamsType
from tenacity import RetryCallState
from zakaz_common.deadline import Deadline
from zakaz_common.retry import RetryPolicy

log = logging.getLogger(__name__)

GOOGLE_SHEETS: Final = "https://sheets.googleapis.com"
"""The host gspread writes into every URL (copied at import, so it is rewritten per request)."""

RETRYABLE: Final = frozenset({408, 429, 500, 502, 503, 504})
"""Answers that a later identical request may not get (quota refills, servers recover)."""

MAX_RETRY_AFTER: Final = 120.0
"""Longest `Retry-After` honoured; a longer one is treated as this (the job has a timeout)."""

CONNECT_TIMEOUT: Final = 5.0
"""Seconds to open a connection to Google (Sheets or the token endpoint)."""

TOKEN_READ_TIMEOUT: Final = 30.0
"""Seconds the token endpoint may stay silent: it answers in well under a second when up."""


class ReadLimiter:
    """At most `max_calls` requests in any `period` seconds (a sliding window).

    A request counts from the moment it *ended*: the server saw it at some point before that,
    so spacing requests by their ends keeps the server's window within the limit however long
    a request (or the token fetch in front of it) took.
    """

    def __init__(
        self,
        max_calls: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_calls, self.period = max_calls, period
        # Slack for clocks of coarse resolution at the window's edge.
        self._margin = min(0.5, period * 0.02)
        self._clock, self._sleep = clock, sleep
        self._calls: list[list[float]] = []
        self._lock = threading.Lock()
        self.waited = 0.0

    @contextmanager
    def slot(self, deadline: Deadline | None = None) -> Iterator[float]:
        """Wait for room in the window and hold it for one request; yields the seconds waited.

        A wait that would pass `deadline` is not begun: `DeadlineExceeded` instead."""
        entry = [math.inf]  # in flight: counts until it ends
        waited = 0.0
        while True:
            with self._lock:
                horizon = self._clock() - self.period - self._margin
                self._calls = [c for c in self._calls if c[0] > horizon]
                if len(self._calls) < self.max_calls:
                    self._calls.append(entry)
                    break
                oldest = min(c[0] for c in self._calls)
                pause = oldest - horizon if oldest != math.inf else 0.05
            if deadline is not None and deadline.remaining() <= pause:
                raise deadline.exceeded("waiting for Google's read quota")
            self._sleep(pause)
            waited += pause
        self.waited += waited
        try:
            yield waited
        finally:
            with self._lock:
                entry[0] = self._clock()


_limiters: dict[tuple[str, int, float], ReadLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(user: str, max_calls: int, period: float) -> ReadLimiter:
    """The process's limiter of one quota user: runs in one process share its reads."""
    with _limiters_lock:
        return _limiters.setdefault((user, max_calls, period), ReadLimiter(max_calls, period))


class TokenEndpointRequest(AuthRequest):
    """google-auth's transport, allowed to reach the key file's `token_uri` and nothing else.

    google-auth ≥ 2.60 also looks up a "regional access boundary" at iamcredentials.googleapis.com
    in a background thread before requests; zakaz needs none, and against a sandbox that call
    would leave the machine. Refused here, google-auth carries on without one.
    """

    def __init__(
        self,
        token_uri: str,
        deadline: Deadline | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = TOKEN_READ_TIMEOUT,
    ) -> None:
        super().__init__()
        self.token_uri = token_uri
        self.deadline = deadline or Deadline.unbounded()
        self._connect, self._read = connect_timeout, read_timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Send a token request within the deadline; refuse any other URL."""
        target = url.split("?", 1)[0]
        if target != self.token_uri:
            raise google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"zakaz sends google-auth requests only to the key's token_uri, not {target}"
            )
        # Whatever timeout google-auth passes (gspread's, or its 120 s default) is replaced:
        # google-auth retries a failing endpoint itself, and each try must fit the deadline.
        left = self.deadline.timeout(
            max(self._connect, self._read), "fetching a Google access token"
        )
        timeout = (min(self._connect, left), min(self._read, left))
        try:
            return super().__call__(url, method, body, headers, timeout, **kwargs)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.TransportError as exc:
            if left < self._read:  # the deadline, not the endpoint's own timeout, cut the wait
                raise self.deadline.exceeded("fetching a Google access token", exc) from exc
            raise


@dataclass
class ReadStats:
    """What reading cost: requests sent, and how many Google throttled or failed."""

    reads: int = 0
    throttled: int = 0
    server_errors: int = 0
    backoff_seconds: float = 0.0
    limiter_wait_seconds: float = 0.0

    def as_counts(self) -> dict[str, Any]:
        """Counts for the run's metrics."""
        return {
            "api_reads": self.reads,
            "api_throttled": self.throttled,
            "api_server_errors": self.server_errors,
            "api_backoff_seconds": round(self.backoff_seconds, 3),
            "api_limiter_wait_seconds": round(self.limiter_wait_seconds, 3),
        }


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, APIError):
        return int(exc.response.status_code)
    return None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    return _status(exc) in RETRYABLE


RETRY: Final = RetryPolicy(
    max_wait=MAX_RETRY_AFTER, honour=("Retry-After",), jitter=0.25, transient=_retryable
)
"""gspread's `APIError` of a `RETRYABLE` answer and requests' network failures; attempts and
base come from the settings; `Retry-After` is read from the error's response."""


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), if any."""
    if not isinstance(exc, APIError):
        return None
    seconds = RETRY.requested(exc)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


class SheetsHTTPClient(HTTPClient):
    """gspread's HTTP client pointed at `api_url`, rate-limited and retrying 429/5xx."""

    def __init__(
        self,
        session: AuthorizedSession,
        *,
        api_url: str,
        limiter: ReadLimiter,
        attempts: int,
        backoff: float,
        stats: ReadStats,
        deadline: Deadline | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = 60.0,
    ) -> None:
        super().__init__(session.credentials, session)
        self.api_url, self.limiter, self.stats = api_url, limiter, stats
        self.retry = replace(RETRY, attempts=attempts, base=backoff)
        self.deadline = deadline or Deadline.unbounded()
        self._connect, self._read = connect_timeout, read_timeout
        self.timeout = (connect_timeout, read_timeout)

    def request(
        self,
        method: str,
        endpoint: str,
        params: ParamsType | None = None,
        data: bytes | None = None,
        json: Mapping[str, Any] | None = None,
        files: FileType = None,
        headers: MutableMapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one API request: limited, retried, with the host replaced."""
        url = endpoint.replace(GOOGLE_SHEETS, self.api_url, 1)
        retrying = self.retry.retrying(
            self.deadline, "reading Google Sheets", before_sleep=self._note_retry
        )
        for attempt in retrying:
            with attempt, self.limiter.slot(self.deadline) as waited:
                self.stats.limiter_wait_seconds += waited
                left = self.deadline.timeout(
                    max(self._connect, self._read), "reading Google Sheets"
                )
                # gspread sends `self.timeout` with the request (google-auth the token fetch
                # in front of it, which bounds itself again).
                self.timeout = (min(self._connect, left), min(self._read, left))
                self.stats.reads += 1
                return super().request(method, url, params, data, json, files, headers)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _note_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        status = _status(exc) if exc else None
        if status == 429:
            self.stats.throttled += 1
        elif status is not None:
            self.stats.server_errors += 1
        wait = state.next_action.sleep if state.next_action else 0.0
        self.stats.backoff_seconds += wait
        log.warning(
            "Google Sheets answered %s (attempt %d of %d); retrying in %.2f s",
            status or type(exc).__name__,
            state.attempt_number,
            self.retry.attempts,
            wait,
        )
