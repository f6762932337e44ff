"""HTTP to VK Ads with one policy for every request, token requests included.

A declared retry (`RETRY`) for 429, 5xx and network failures (exponential from
`retry_wait_seconds`, at least the upstream's `Retry-After`); a pause when
`X-RateLimit-RPS-Remaining` says this calendar second is used up; an hourly or daily quota
at 0 fails at once as transient, for RQ to retry in minutes rather than seconds. All of it
within the run's deadline: no request waits longer than the time left, no retry starts after it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import httpx
from tenacity import RetryCallState
from zakaz_common.deadline import Deadline
from zakaz_common.errors import TransientError
from zakaz_common.redact import scrub
from zakaz_common.retry import RetryPolicy

log = logging.getLogger(__name__)

#: Longest single back-off wait, whatever `Retry-After` asks.
MAX_WAIT_SECONDS = 60.0

#: The `Retry-After` and `X-RateLimit-*` headers VK sends.
_RPS_REMAINING = "X-RateLimit-RPS-Remaining"
_QUOTAS = ("X-RateLimit-Hourly-Remaining", "X-RateLimit-Daily-Remaining")


class QuotaExhausted(TransientError):
    """The hourly or daily request quota is used up: retry in minutes (RQ), not seconds."""


#: 429, 5xx and network failures, but not a spent quota; attempts and base from `ClientOptions`.
RETRY: Final = RetryPolicy(
    max_wait=MAX_WAIT_SECONDS,
    honour=("Retry-After",),
    transient=lambda exc: isinstance(exc, TransientError) and not isinstance(exc, QuotaExhausted),
)


@dataclass(frozen=True)
class ClientOptions:
    """HTTP tuning of one client."""

    retry_wait_seconds: float = 1.0
    max_attempts: int = 6
    #: Seconds VK may stay silent on one request.
    timeout_seconds: float = 30.0
    #: Seconds to open a connection to VK.
    connect_timeout_seconds: float = 5.0


class VkHttp:
    """One HTTP connection pool to VK with the retry and rate-limit policy, and its counters."""

    def __init__(
        self, base_url: str, options: ClientOptions | None = None, deadline: Deadline | None = None
    ) -> None:
        self.options = options or ClientOptions()
        self.deadline = deadline or Deadline.unbounded()
        self.retry = replace(
            RETRY, attempts=self.options.max_attempts, base=self.options.retry_wait_seconds
        )
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(
                self.options.timeout_seconds, connect=self.options.connect_timeout_seconds
            ),
            headers={"Accept": "application/json", "User-Agent": "zakaz-vk-ads/0.1"},
        )
        #: Requests sent, by kind (`token`, `ad_plans`, `statistics`, … and `retries`, `renewals`).
        self.counts: Counter[str] = Counter()
        self._second_used_up_at: float | None = None

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> VkHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request with retries; returns any non-transient answer for the caller."""
        return self.retry.call(
            self.deadline,
            f"asking VK Ads {path}",
            self._send_once,
            kind,
            method,
            path,
            before_sleep=self._before_sleep,
            **kwargs,
        )

    def _send_once(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self._pace()
        timeout = self.deadline.http_timeout(
            connect=self.options.connect_timeout_seconds,
            read=self.options.timeout_seconds,
            what=f"asking VK Ads {path}",
        )
        self.counts[kind] += 1
        try:
            response = self._http.request(method, path, timeout=timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"VK Ads did not answer {path} in time: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"VK Ads could not be reached ({path}): {exc}") from exc
        self._note_limits(response)
        if response.status_code == 429:
            quota = [h for h in _QUOTAS if response.headers.get(h) == "0"]
            message = f"VK Ads rate limit on {path} (429)"
            if quota:
                raise QuotaExhausted(f"{message}: {quota[0]} is 0, try again later")
            raise TransientError(message, retry_after=self.retry.asked(response.headers))
        if response.status_code >= 500:
            raise TransientError(
                f"VK Ads answered {response.status_code} on {path}: {error_text(response)}",
                retry_after=self.retry.asked(response.headers),
            )
        return response

    def _pace(self) -> None:
        # VK counts requests per calendar second: when the last answer said none are left in
        # this second, wait for the next one instead of drawing a 429.
        if self._second_used_up_at is None:
            return
        used_up = self._second_used_up_at
        self._second_used_up_at = None
        wait = int(used_up) + 1 - time.time()
        if wait > 0:
            self.counts["rate_pauses"] += 1
            time.sleep(wait)

    def _note_limits(self, response: httpx.Response) -> None:
        if response.headers.get(_RPS_REMAINING) == "0" and response.status_code != 429:
            self._second_used_up_at = time.time()

    def _before_sleep(self, state: RetryCallState) -> None:
        self.counts["retries"] += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning("VK Ads: %s; attempt %d, retrying", scrub(str(exc)), state.attempt_number)


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def error_text(response: httpx.Response) -> str:
    """What an error answer says (code and message), scrubbed and cut short."""
    body = json_body(response)
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            code, message = inner.get("code", ""), inner.get("message", "")
            fields = inner.get("fields")
            detail = f" {fields}" if fields else ""
            return scrub(f"{code}: {message}{detail}")[:500]
        parts = [
            str(body[k]) for k in ("error", "code", "error_description", "message") if k in body
        ]
        if parts:
            return scrub(": ".join(parts))[:500]
    return scrub(response.text)[:200] or "(empty body)"
