"""The colour of a source: one table of rules, first match wins, so no two readings disagree.

Green only when nothing is wrong. Red for a failed last run, an open error alert, stale data or
a dead worker; amber for warnings (a warning alert, a partial run, running late, no success
yet, disabled, the worker unknown); grey for a source not installed, or on standby: off by
design (its manifest disables it by default, as the backup sales channel `gmail`) and not
switched on. Pure: the facts come in as `Signals`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Colour = Literal["green", "amber", "red", "grey"]

#: Alert severities that make a card red; any other open alert makes it amber at least.
RED_SEVERITIES = frozenset({"error"})


@dataclass(frozen=True)
class Signals:
    """What the rules look at, for one source at one moment."""

    installed: bool = True
    enabled: bool = True
    #: Off unless switched on (the manifest's `enabled_by_default` is false): the backup channel.
    off_by_design: bool = False
    last_run_failed: bool = False
    stale: bool = False
    late: bool = False
    #: None when Redis could not be read.
    worker_alive: bool | None = True
    #: (kind, severity) of every open alert of the source.
    alerts: tuple[tuple[str, str], ...] = ()
    ever_ran: bool = True
    ever_succeeded: bool = True
    #: The last run succeeded without some of its parts.
    partial: bool = False

    def alert_of(self, red: bool) -> str | None:
        """The kind of the first open alert that is (or is not) of a red severity."""
        return next((k for k, sev in self.alerts if (sev in RED_SEVERITIES) == red), None)


@dataclass(frozen=True)
class Grade:
    """A card's colour, the short words for it, and which rule chose them."""

    colour: Colour
    reason: str
    #: The name of the rule, so the page knows which detail explains it.
    rule: str


def _alert_words(kind: str | None) -> str:
    return f"open alert: {(kind or '').replace('_', ' ')}"


Rule = tuple[str, Colour, Callable[[Signals], bool], Callable[[Signals], str]]

#: The rules in order; the first whose test holds gives the colour.
RULES: tuple[Rule, ...] = (
    ("not_installed", "grey", lambda s: not s.installed, lambda s: "not installed"),
    ("failed", "red", lambda s: s.last_run_failed, lambda s: "last run failed"),
    (
        "error_alert",
        "red",
        lambda s: s.alert_of(red=True) is not None,
        lambda s: _alert_words(s.alert_of(red=True)),
    ),
    ("standby", "grey", lambda s: not s.enabled and s.off_by_design, lambda s: "standby"),
    ("disabled", "amber", lambda s: not s.enabled, lambda s: "disabled"),
    ("stale", "red", lambda s: s.stale, lambda s: "stale: data older than its budget"),
    ("worker_dead", "red", lambda s: s.worker_alive is False, lambda s: "worker dead"),
    (
        "warning_alert",
        "amber",
        lambda s: s.alert_of(red=False) is not None,
        lambda s: _alert_words(s.alert_of(red=False)),
    ),
    ("never_ran", "amber", lambda s: not s.ever_ran, lambda s: "never ran"),
    (
        "no_success",
        "amber",
        lambda s: not s.ever_succeeded,
        lambda s: "no successful run yet",
    ),
    ("partial", "amber", lambda s: s.partial, lambda s: "partial run"),
    ("late", "amber", lambda s: s.late, lambda s: "running late"),
    (
        "worker_unknown",
        "amber",
        lambda s: s.worker_alive is None,
        lambda s: "worker unknown: Redis unreadable",
    ),
)


def matches(signals: Signals) -> list[Grade]:
    """Every rule that holds, in order (the first is the colour; the rest are also true)."""
    return [Grade(c, words(signals), name) for name, c, holds, words in RULES if holds(signals)]


def grade(signals: Signals) -> Grade:
    """The colour of a source: the first rule that holds, else green."""
    found = matches(signals)
    return found[0] if found else Grade("green", "fresh", "fresh")


def also(signals: Signals) -> list[str]:
    """The words of the red and amber rules that hold besides the one that gave the colour."""
    return [g.reason for g in matches(signals)[1:] if g.colour in {"red", "amber"}]
