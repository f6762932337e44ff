"""A run's deadline: a time budget started with the run that every upstream call respects.

An upstream that accepts a connection and never answers must not hold a run (and its source
lock) for the length of RQ's hard kill. So each run gets a `Deadline` from its manifest
(`SourceManifest.deadline`, or `ZAKAZ_DEADLINE_<SOURCE>_SECONDS`): no request waits longer than
the time left, no retry starts after it, and a run that runs out fails with `DeadlineExceeded`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import httpx
from tenacity import RetryCallState
from tenacity.stop import stop_base

from zakaz_common.errors import ZakazError

if TYPE_CHECKING:
    from zakaz_common.manifest import SourceManifest

log = logging.getLogger(__name__)

#: Shortest timeout a request is given: a timeout of zero means "no timeout" to some clients.
MIN_REQUEST_SECONDS: Final = 0.05


class DeadlineExceeded(ZakazError):
    """The run's deadline passed while it still waited on an upstream (or had work left).

    Transient: the upstream may answer the next run (RQ retries it later), but this run ends
    now, recorded as `error` with the lock released.
    """

    transient = True


def override_variable(source: str) -> str:
    """The environment variable that overrides a source's deadline, in seconds."""
    return f"ZAKAZ_DEADLINE_{source.upper()}_SECONDS"


@dataclass(frozen=True)
class Deadline:
    """`seconds` of budget from `started` (monotonic clock); `label` names whose it is."""

    seconds: float
    label: str = "run"
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def unbounded(cls) -> Deadline:
        """A deadline that never passes (clients used outside a run, tools)."""
        return cls(math.inf, "call")

    @classmethod
    def for_run(cls, manifest: SourceManifest) -> Deadline:
        """A run's deadline, started now: the manifest's, or the operator's override.

        Never raises (a run is already recorded as running when this is called): an override
        that is not a positive number is ignored, one that reaches the job timeout is cut to
        leave RQ's hard kill its margin, each with a warning.
        """
        seconds = manifest.deadline.total_seconds()
        name = override_variable(manifest.name)
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                wanted = float(raw)
            except ValueError:
                wanted = math.nan
            ceiling = manifest.latest_deadline().total_seconds()
            if not wanted > 0 or math.isinf(wanted):
                log.warning("%s=%r is not a positive number of seconds; ignored", name, raw)
            elif wanted > ceiling:
                log.warning("%s=%s leaves the job timeout no margin; %g s used", name, raw, ceiling)
                seconds = ceiling
            else:
                seconds = wanted
        return cls(seconds, f"{manifest.name} run")

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.started + self.seconds - time.monotonic())

    @property
    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.remaining() <= 0.0

    def exceeded(self, what: str, cause: BaseException | str | None = None) -> DeadlineExceeded:
        """The error of running out while doing `what` (the last failure as the cause)."""
        text = f"{self.label} stopped at its deadline of {self.seconds:g} s while {what}"
        if cause:
            text += f" (last: {cause})"
        return DeadlineExceeded(text)

    def check(self, what: str) -> None:
        """Raise `DeadlineExceeded` when the budget is spent, before starting `what`."""
        if self.expired:
            raise self.exceeded(what)

    def timeout(self, limit: float, what: str) -> float:
        """`limit` seconds, or the time left when that is less; raises when none is left."""
        self.check(what)
        # The time left in whole hundredths, rounded down: it shows in error messages, and a
        # limit that binds is returned as given (callers compare with it).
        left = self.remaining()
        if left < limit:
            return max(MIN_REQUEST_SECONDS, math.floor(left * 100) / 100)
        return limit

    def http_timeout(self, *, connect: float, read: float, what: str) -> httpx.Timeout:
        """An httpx timeout for one request: connect and read, neither beyond the time left."""
        left = self.timeout(max(connect, read), what)
        return httpx.Timeout(min(read, left), connect=min(connect, left))

    @property
    def stop(self) -> StopAtDeadline:
        """A tenacity stop (combine it: `stop_after_attempt(n) | deadline.stop`)."""
        return StopAtDeadline(self)

    def give_up(self, what: str) -> GiveUp:
        """A tenacity `retry_error_callback`: when the deadline stopped the retries, raise
        `DeadlineExceeded` (from the last failure); else re-raise the last failure."""
        return GiveUp(self, what)


class StopAtDeadline(stop_base):
    """No attempt may start after the deadline: stop when the wait before the next one
    would reach it."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        """Whether to stop retrying now."""
        return self.deadline.remaining() <= retry_state.upcoming_sleep


@dataclass(frozen=True)
class GiveUp:
    """What a retry loop does when it stops (see `Deadline.give_up`)."""

    deadline: Deadline
    what: str

    def __call__(self, state: RetryCallState) -> object:
        """Raise the error the stop stands for."""
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if self.deadline.stop(state):
            raise self.deadline.exceeded(self.what, error) from error
        if outcome is None:  # tenacity always has an outcome when it stops
            raise self.deadline.exceeded(self.what)
        return outcome.result()
