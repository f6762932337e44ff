"""Parts of a run that can fail on their own: a show's seat map, a listed message.

A load that tolerates one part failing (the rest still loads, the failed part keeps what it
had) must not report a run where every part failed as a success: that is an outage that
leaves the data silently stale. `PartTally` counts the parts a load tried; `settle` raises
`PartsFailed` when all of them failed, and otherwise says which failed, for
`LoadOutcome.failed_parts` (the run succeeds with a `partial` warning alert naming them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zakaz_common.errors import UpstreamError

#: How many failed part names an error or warning lists; the rest are counted, not named.
NAMES_SHOWN = 20


class PartsFailed(UpstreamError):
    """Every part of a kind that the run needs failed, so the run fails naming them."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        # Retrying later helps only when every part failed for a reason that may pass.
        self.transient = transient


@dataclass
class PartTally:
    """The parts of one kind a load tried (`what`, e.g. "seat maps of shows") and those that failed."""

    what: str
    tried: int = 0
    failed: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    #: Whether every failure so far may pass on a retry (429, 5xx, timeouts).
    all_transient: bool = True

    def loaded(self) -> None:
        """Count one part that loaded."""
        self.tried += 1

    def failure(self, name: str, exc: BaseException) -> None:
        """Count one part that failed, with its name (an id, never PII) and why."""
        self.tried += 1
        self.failed.append(name)
        self.reasons.append(str(exc))
        self.all_transient = self.all_transient and bool(getattr(exc, "transient", False))

    def describe(self) -> str:
        """`N of M <what> failed: a, b, …` (empty when none failed)."""
        if not self.failed:
            return ""
        return f"{len(self.failed)} of {self.tried} {self.what} failed: {self._names()}"

    def settle(self) -> list[str]:
        """Raise PartsFailed when every part tried failed; else the warnings (none or one)."""
        if self.tried and len(self.failed) == self.tried:
            raise PartsFailed(
                f"all {self.tried} {self.what} failed: {self._names()} "
                f"(first error: {self.reasons[0]})",
                transient=self.all_transient,
            )
        return [self.describe()] if self.failed else []

    def _names(self) -> str:
        names = ", ".join(self.failed[:NAMES_SHOWN])
        more = len(self.failed) - NAMES_SHOWN
        return f"{names} and {more} more" if more > 0 else names
