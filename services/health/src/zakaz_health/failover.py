"""Failover to the backup sales channel: Gmail reports while both QTickets feeds are stale.

`evaluate_failover` runs with the alert job (`alerting.evaluate`). When every installed primary
sales source (`qtickets_sheets`, `qtickets_api`) is down — its last success older than its
freshness budget — the `gmail` schedule is enabled (the runtime flag `zakaz:enabled:gmail`)
and a `failover` alert is raised on `gmail`. When a primary is fresh again, the schedule is
disabled and the alert resolved, which the alert job mails as the announcement ("resolved").

Only a failover's own switch is undone: a Redis marker records that the failover enabled gmail,
so a gmail schedule an operator turned on by hand is left alone. A primary that never succeeded
counts as down once it has run (or is disabled); a freshly deployed one, not yet run, does not,
so a new deployment never fails over before its first load. `now` is an argument: no clock here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import redis
from redis.exceptions import RedisError
from zakaz_common.alerts import Alert, raise_alert, resolve_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.locks import KEY_PREFIX
from zakaz_common.manifest import SourceManifest
from zakaz_common.redact import scrub
from zakaz_common.scheduler import is_enabled, set_enabled

from zakaz_health import wording
from zakaz_health.state import SourceState, collect

if TYPE_CHECKING:
    from zakaz_health.alerting import AlertReport

log = logging.getLogger(__name__)

BACKUP: Final = "gmail"
"""The backup sales source the failover switches on and off."""

PRIMARIES: Final = ("qtickets_sheets", "qtickets_api")
"""The sales sources whose staleness triggers the failover (all installed ones must be down)."""

FAILOVER: Final = "failover"
"""Alert kind, on job `gmail`, open while the failover has the backup channel on."""

Action = Literal["enabled", "disabled", "none"]


def marker_key(source: str = BACKUP) -> str:
    """The Redis key saying the failover (not an operator) enabled the backup source."""
    return f"{KEY_PREFIX}failover:{source}"


@dataclass
class FailoverReport:
    """What one evaluation decided and did."""

    action: Action = "none"
    #: Whether every installed primary is down now (None: not judged).
    primaries_down: bool | None = None
    reason: str = ""
    raised: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge_into(self, report: AlertReport) -> None:
        """Add this evaluation's alerts and errors to the alert job's report."""
        report.raised.extend(self.raised)
        report.resolved.extend(self.resolved)
        report.errors.extend(self.errors)


def primary_down(state: SourceState) -> bool:
    """Whether a primary is not delivering: stale, or never successful although it has run."""
    if state.stale:
        return True
    if state.last_success_at is None:
        return state.last_verdict is not None or not state.enabled
    return False


def _describe(state: SourceState) -> str:
    if state.last_success_at is None:
        ran = "has never loaded successfully" if state.last_verdict else "is disabled"
        return f"{state.source} {ran}"
    return (
        f"{state.source} last loaded {wording.duration(state.age_seconds)} ago "
        f"(budget {wording.duration(state.budget_seconds)})"
    )


def evaluate_failover(
    wh: Warehouse,
    conn: redis.Redis | None,
    manifests: Iterable[SourceManifest],
    now: float,
) -> FailoverReport:
    """Enable the gmail schedule when every primary is down, disable it when one recovers."""
    report = FailoverReport()
    by_name = {m.name: m for m in manifests}
    backup = by_name.get(BACKUP)
    present = [name for name in PRIMARIES if name in by_name]
    if backup is None or not present:
        report.reason = "gmail or both primaries not installed: nothing to fail over"
        return report
    if conn is None:
        report.errors.append("failover not evaluated: no Redis connection")
        return report
    snapshot = collect(wh, conn, [by_name[n] for n in present], now)
    states = [s for s in snapshot.sources if s.source in present]
    report.primaries_down = all(primary_down(s) for s in states)
    try:
        if report.primaries_down:
            _fail_over(wh, conn, backup, states, report)
        else:
            _fail_back(wh, conn, [s for s in states if not primary_down(s)], report)
    except (RedisError, OSError) as exc:
        report.errors.append(f"failover not applied, Redis failed: {scrub(str(exc))}")
    return report


def _fail_over(
    wh: Warehouse,
    conn: redis.Redis,
    backup: SourceManifest,
    states: list[SourceState],
    report: FailoverReport,
) -> None:
    owned = conn.get(marker_key()) is not None
    if is_enabled(conn, BACKUP, backup) and not owned:
        report.reason = "primaries down, and gmail is already enabled by an operator"
        return
    why = "; ".join(_describe(s) for s in states)
    if not owned:
        conn.set(marker_key(), "1")
        set_enabled(conn, BACKUP, True)
        report.action = "enabled"
        log.warning("failover: %s; gmail schedule enabled", why)
    report.reason = why
    alert = raise_alert(
        wh,
        BACKUP,
        FAILOVER,
        "warning",
        f"Sales failover: {why}. The backup channel (sales reports from Gmail, every 4 h) is "
        "enabled until a primary loads again; check the QTickets Sheets and API sources.",
    )
    if alert is not None:
        report.raised.append(alert)


def _fail_back(
    wh: Warehouse, conn: redis.Redis, fresh: list[SourceState], report: FailoverReport
) -> None:
    if conn.get(marker_key()) is None:
        return
    why = "; ".join(_describe(s) for s in fresh)
    set_enabled(conn, BACKUP, False)
    conn.delete(marker_key())
    report.action = "disabled"
    report.reason = why
    report.resolved.extend(resolve_alerts(wh, BACKUP, FAILOVER))
    log.warning("failover ended: %s; gmail schedule disabled again", why)
