"""The one retry policy every upstream client declares: what is retried, how long it waits.

A client states its policy as data (`RetryPolicy(attempts=5, base=1.0, max_wait=60)`) and runs
each request through `policy.call(...)` (or iterates `policy.retrying(...)`). Only what
`transient` accepts is retried — by default `TransientError`, which each client raises for 429,
5xx and network failures at its boundary; permanent and auth errors are raised at once. Waits
grow exponentially from `base` with upward jitter, are never shorter than the upstream asked
(`retry_after` of the error, or the `honour`ed headers of its response) and never longer than
`max_wait`. Attempts are bounded by `attempts`, `budget` and the run's `Deadline`: no attempt
starts, and no wait is begun, that would reach it (`DeadlineExceeded` from the last error).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base, stop_before_delay, stop_never

from zakaz_common.deadline import Deadline
from zakaz_common.errors import TransientError
from zakaz_common.http import retry_after_seconds

T = TypeVar("T")

#: Called before each wait with tenacity's state (counters, log lines of the client).
BeforeSleep = Callable[[RetryCallState], None]


def is_transient(exc: BaseException) -> bool:
    """Whether an error is worth another attempt: zakaz's `TransientError` (429, 5xx, network)."""
    return isinstance(exc, TransientError)


@dataclass(frozen=True)
class RetryPolicy:
    """How one client retries a request; see the module docstring."""

    #: Attempts in all, the first included; None: as many as `budget` and the deadline allow.
    attempts: int | None = 5
    #: Seconds of the first backoff; each later one doubles (`growth`). 0: wait only when asked.
    base: float = 1.0
    #: Longest single wait, whatever the upstream asks (the run has a deadline).
    max_wait: float = 60.0
    #: Response headers whose delta-seconds or HTTP date are waited out at least.
    honour: tuple[str, ...] = ("Retry-After",)
    #: The backoff is stretched by a random factor in [1, 1 + jitter] so clients do not align.
    jitter: float = 0.25
    #: Factor between one backoff and the next.
    growth: float = 2.0
    #: Seconds all attempts together may take (besides the deadline); None: no such bound.
    budget: float | None = None
    #: Which errors are retried; anything else is raised at once.
    transient: Callable[[BaseException], bool] = is_transient

    def asked(self, headers: Mapping[str, str] | None) -> float | None:
        """Seconds the first `honour`ed header present asks for (None when none does)."""
        if headers is None:
            return None
        for name in self.honour:
            seconds = retry_after_seconds(headers.get(name))
            if seconds is not None:
                return seconds
        return None

    def requested(self, error: BaseException | None) -> float | None:
        """Seconds the upstream asked for with `error`: its `retry_after`, else its response's
        `honour`ed headers (errors of third-party clients such as gspread carry the response)."""
        if error is None:
            return None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            return max(0.0, float(retry_after))
        headers = getattr(getattr(error, "response", None), "headers", None)
        return self.asked(headers) if isinstance(headers, Mapping) else None

    def backoff(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """The exponential wait after failed attempt number `attempt` (from 1), jittered."""
        return self.base * self.growth ** (attempt - 1) * (1.0 + self.jitter * draw())

    def wait(
        self, attempt: int, error: BaseException | None, draw: Callable[[], float] = random.random
    ) -> float:
        """Seconds to wait after failed attempt `attempt`: the backoff, at least what was
        asked, at most `max_wait`."""
        wait = self.backoff(attempt, draw)
        asked = self.requested(error)
        if asked is not None:
            wait = max(wait, asked)
        return max(0.0, min(wait, self.max_wait))

    def retrying(
        self,
        deadline: Deadline,
        what: str,
        *,
        before_sleep: BeforeSleep | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Retrying:
        """A tenacity `Retrying` of this policy within `deadline`; `what` names the work in
        the `DeadlineExceeded` raised when the deadline stops it."""
        stop: stop_base = stop_never if self.attempts is None else stop_after_attempt(self.attempts)
        if self.budget is not None:
            stop = stop | stop_before_delay(self.budget)
        return Retrying(
            retry=retry_if_exception(self.transient),
            wait=self._tenacity_wait,
            stop=stop | deadline.stop,
            before_sleep=before_sleep,
            retry_error_callback=deadline.give_up(what),
            reraise=True,
            sleep=sleep,
        )

    def call(
        self,
        deadline: Deadline,
        what: str,
        attempt: Callable[..., T],
        *args: Any,
        before_sleep: BeforeSleep | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> T:
        """`attempt(*args, **kwargs)`, retried under this policy within `deadline`."""
        retrying = self.retrying(deadline, what, before_sleep=before_sleep, sleep=sleep)
        result: T = retrying(attempt, *args, **kwargs)
        return result

    def _tenacity_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.wait(state.attempt_number, error)
