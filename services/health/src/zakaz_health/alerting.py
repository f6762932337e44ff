"""The alert job: raise what is wrong, resolve what no longer is, and e-mail both once.

`evaluate_alerts` is the RQ job the scheduler runs every 2 h (and may run after a failed run);
`evaluate` is its core, with the warehouse, Redis and the clock passed in.

Raised here: `stale` (last success older than the manifest's budget), `worker_dead` (no worker
with a fresh heartbeat on an enabled source's queue), `failed_jobs` (the RQ failed-job registry
grew since the last evaluation). `run_failed` is raised by the run itself (`zakaz_common.runs`)
and only e-mailed here. `alerts.notified` records what was mailed: 0 nothing, 1 the problem,
2 the problem and its resolution; an alert resolved before anyone was told is never mailed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.exceptions import RedisError
from zakaz_common import clock
from zakaz_common.alerts import Alert, Severity, open_alerts, raise_alert, resolve_alerts
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.locks import KEY_PREFIX, redis_client
from zakaz_common.manifest import SourceManifest, manifests
from zakaz_common.migrate import migrate, pending
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings

from zakaz_health import wording
from zakaz_health.failover import evaluate_failover
from zakaz_health.mail import MailError, compose, smtp_session
from zakaz_health.queues import WORKER_HEARTBEAT_MAX_AGE_SECONDS
from zakaz_health.settings import SERVICE, AlertSettings
from zakaz_health.state import SourceState, collect

log = logging.getLogger(__name__)

#: Alert kinds this job raises and resolves.
STALE = "stale"
WORKER_DEAD = "worker_dead"
FAILED_JOBS = "failed_jobs"

#: `alerts.notified` values.
NOT_MAILED, PROBLEM_MAILED, RESOLUTION_MAILED = 0, 1, 2

_MARK_SQL = """
INSERT INTO alerts (alert_id, created_at, job, severity, kind, message, notified, resolved_at, _ver)
SELECT alert_id, created_at, job, severity, kind, message, {notified:UInt8}, resolved_at,
       {ver:UInt64}
FROM alerts FINAL WHERE alert_id = {alert_id:String}
"""

_RESOLVED_SQL = """
SELECT alert_id, created_at, job, severity, kind, message, notified, resolved_at
FROM alerts FINAL WHERE resolved_at IS NOT NULL AND notified = {notified:UInt8}
ORDER BY created_at
"""


def failed_count_key(source: str) -> str:
    """The Redis key holding the failed-job count seen at the last evaluation."""
    return f"{KEY_PREFIX}health:failed_jobs:{source}"


@dataclass
class AlertReport:
    """What one evaluation did."""

    evaluated_at: float
    raised: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    #: `problem:<id>` / `resolved:<id>` for every e-mail sent.
    mailed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-simple form (the RQ job's result)."""
        return {
            "evaluated_at": self.evaluated_at,
            "raised": [f"{a.job}:{a.kind}" for a in self.raised],
            "resolved": [f"{a.job}:{a.kind}" for a in self.resolved],
            "mailed": list(self.mailed),
            "errors": list(self.errors),
        }


def evaluate(
    wh: Warehouse,
    conn: redis.Redis | None,
    manifests: Iterable[SourceManifest],
    now: float,
    *,
    settings: AlertSettings | None = None,
) -> AlertReport:
    """Raise and resolve alerts for every installed source, then mail what is unmailed."""
    report = AlertReport(evaluated_at=now)
    snap = collect(wh, conn, list(manifests), now)
    if snap.redis_error:
        report.errors.append(
            f"Redis unreadable, worker and queue checks skipped: {snap.redis_error}"
        )
    open_kinds = {(a.job, a.kind) for a in snap.alerts}
    for state in snap.sources:
        if not state.installed:
            continue
        checks: list[tuple[str, Severity, str | None]] = [
            (STALE, "warning", _stale(state)),
        ]
        if state.queue is not None and conn is not None:
            checks.append((WORKER_DEAD, "error", _worker_dead(state)))
            try:
                grew = _failed_jobs_grew(conn, state.source, state.queue.failed_jobs)
                checks.append((FAILED_JOBS, "warning", grew))
            except RedisError as exc:
                report.errors.append(f"{state.source}: failed-job count not kept: {exc}")
        for kind, severity, problem in checks:
            if problem is not None:
                alert = raise_alert(wh, state.source, kind, severity, problem)
                if alert is not None:
                    log.warning("alert raised: %s %s: %s", state.source, kind, alert.message)
                    report.raised.append(alert)
            elif (state.source, kind) in open_kinds:
                done = resolve_alerts(wh, state.source, kind)
                log.info("alert resolved: %s %s", state.source, kind)
                report.resolved.extend(done)
    evaluate_failover(wh, conn, manifests, now).merge_into(report)
    settings = settings if settings is not None else load_settings(AlertSettings, SERVICE)
    if settings.configured:
        notify(wh, settings, report)
    return report


def notify(wh: Warehouse, settings: AlertSettings, report: AlertReport) -> None:
    """Mail every open alert not yet mailed and every mailed alert since resolved."""
    problems = [a for a in open_alerts(wh) if not a.notified]
    rows = wh.rows(_RESOLVED_SQL, {"notified": PROBLEM_MAILED})
    resolutions = [Alert(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]
    if not problems and not resolutions:
        return
    batch = [(a, False) for a in problems] + [(a, True) for a in resolutions]
    try:
        with smtp_session(settings) as smtp:
            for alert, resolved in batch:
                smtp.send_message(compose(alert, settings, resolved=resolved))
                _mark(wh, alert.alert_id, RESOLUTION_MAILED if resolved else PROBLEM_MAILED)
                report.mailed.append(f"{'resolved' if resolved else 'problem'}:{alert.alert_id}")
    except MailError as exc:
        # Unmailed alerts keep their `notified` value, so the next evaluation tries again.
        log.error("%s", exc)
        report.errors.append(str(exc))


def evaluate_alerts() -> dict[str, Any]:
    """The RQ job: evaluate alerts against the configured warehouse and Redis."""
    core = load_settings(CoreSettings, SERVICE)
    wh = open_warehouse(load_settings(WarehouseSettings, SERVICE), core)
    if pending(wh):
        migrate(wh)
    report = evaluate(wh, redis_client(core.redis_url), manifests().values(), clock.now())
    result = report.to_dict()
    log.info("alerts evaluated: %s", result)
    return result


def _stale(state: SourceState) -> str | None:
    if not (state.enabled and state.stale):
        return None
    return (
        f"{state.title} ({state.source}): no successful load for "
        f"{wording.duration(state.age_seconds)}, more than its freshness budget of "
        f"{wording.duration(state.budget_seconds)}; last success "
        f"{wording.moscow(state.last_success_at)}"
    )


def _worker_dead(state: SourceState) -> str | None:
    if not state.enabled or state.queue is None or state.queue.worker_alive:
        return None
    return (
        f"{state.source}: no RQ worker serves queue {state.source!r} "
        f"({state.queue.workers} registered, none with a heartbeat in the last "
        f"{WORKER_HEARTBEAT_MAX_AGE_SECONDS} s); is the {state.source} service running?"
    )


def _failed_jobs_grew(conn: redis.Redis, source: str, count: int) -> str | None:
    """Compare the failed-job count with the last evaluation's and keep the new count."""
    raw = conn.set(failed_count_key(source), count, get=True)
    previous = int(raw) if raw is not None else 0
    if count <= previous:
        return None
    return (
        f"{source}: the RQ failed-job registry grew from {previous} to {count} jobs "
        f"since the last check; see `rq info` or the registry of queue {source!r}"
    )


def _mark(wh: Warehouse, alert_id: str, notified: int) -> None:
    """Rewrite an alert's row with a new `notified`, keeping whatever else it has now."""
    wh.command(_MARK_SQL, {"alert_id": alert_id, "notified": notified, "ver": time.time_ns()})
