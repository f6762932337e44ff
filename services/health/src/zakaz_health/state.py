"""Every source's state at one moment, read from ClickHouse run rows and Redis.

This is the one reading that the JSON endpoints, the metrics, the status page and the alert
job share, so they never disagree. `now` is always an argument: nothing here reads the clock but
the virtual clock's offset, since RQ's heartbeats are real time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import redis
from redis.exceptions import RedisError
from zakaz_common import clock
from zakaz_common.alerts import Alert, open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import CONTRACT_SOURCES, SourceManifest
from zakaz_common.redact import scrub
from zakaz_common.scheduler import is_enabled
from zakaz_common.timeutil import MSK

from zakaz_health.queues import QueueState, queue_state
from zakaz_health.rules import Colour, Grade, Signals, grade

#: Runs per source kept for the status page's history.
RECENT_RUNS_PER_SOURCE = 10

#: Statuses that end a run with a verdict (a dry run proves nothing about the data).
VERDICT_STATUSES = ("success", "error")

_RECENT_SQL = """
SELECT run_id, job, status, toUnixTimestamp(started_at) AS started,
       toUnixTimestamp(finished_at) AS finished, rows_processed, rows_rejected, message, metrics,
       params, trigger
FROM meta_job_runs
WHERE {verdict_only:UInt8} = 0 OR status IN ('success', 'error')
ORDER BY started_at DESC, _ver DESC
LIMIT {per_source:UInt32} BY job
"""

_TOTALS_SQL = """
SELECT job,
       toUnixTimestamp(maxIf(finished_at, status = 'success')) AS last_success,
       argMaxIf(rows_processed, tuple(started_at, _ver), status = 'success') AS last_success_rows,
       sumIf(rows_processed, status = 'success') AS rows_loaded,
       sumIf(rows_rejected, status IN ('success', 'error')) AS rows_rejected
FROM meta_job_runs
GROUP BY job
"""


@dataclass(frozen=True)
class RunInfo:
    """One run row, times as Unix seconds."""

    run_id: str
    status: str
    started_at: float
    finished_at: float | None
    rows_processed: int
    rows_rejected: int
    message: str
    duration_seconds: float | None
    #: What started it: `schedule`, `cli`, `backfill`, `api`…
    trigger: str = ""
    #: The date window asked for (`params.since` / `params.to`), when one was.
    since: date | None = None
    to: date | None = None
    #: It succeeded without some of its parts (`metrics.failed_parts`).
    partial: bool = False

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunInfo:
        """Build from a row of `_RECENT_SQL`."""
        started = float(row["started"])
        finished = float(row["finished"]) if row["finished"] is not None else None
        duration: float | None = None
        metrics = _json_object(row.get("metrics"))
        params = _json_object(row.get("params"))
        duration_ms = metrics.get("duration_ms")
        if isinstance(duration_ms, int | float):
            duration = duration_ms / 1000
        elif finished is not None:
            duration = max(0.0, finished - started)
        return cls(
            run_id=row["run_id"],
            status=row["status"],
            started_at=started,
            finished_at=finished,
            rows_processed=int(row["rows_processed"]),
            rows_rejected=int(row["rows_rejected"]),
            message=scrub(row["message"] or ""),
            duration_seconds=duration,
            trigger=str(row.get("trigger") or ""),
            since=_iso_date(params.get("since")),
            to=_iso_date(params.get("to")),
            partial=bool(metrics.get("failed_parts")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-simple form, times in ISO 8601 Moscow time."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "rows_processed": self.rows_processed,
            "rows_rejected": self.rows_rejected,
            "duration_seconds": self.duration_seconds,
            "message": self.message,
            "trigger": self.trigger,
        }


@dataclass(frozen=True)
class SourceState:
    """One source as the health service reports it."""

    source: str
    title: str
    installed: bool
    enabled: bool
    #: The manifest's freshness budget; None when the source is not installed.
    budget_seconds: float | None
    last_run: RunInfo | None
    #: The latest run that ended in success or error.
    last_verdict: RunInfo | None
    last_success_at: float | None
    last_success_rows: int | None
    rows_loaded_total: int
    rows_rejected_total: int
    last_data_date: date | None
    days_behind: int | None
    age_seconds: float | None
    #: None when Redis could not be read.
    queue: QueueState | None
    open_alerts: int
    recent_runs: tuple[RunInfo, ...] = field(default_factory=tuple)
    #: Off unless switched on: the manifest disables it by default (the backup channel).
    off_by_design: bool = False
    #: (kind, severity) of the source's open alerts, newest first.
    alert_kinds: tuple[tuple[str, str], ...] = ()

    @property
    def stale(self) -> bool:
        """Whether the last success is older than the budget (never-ran sources are not stale)."""
        return (
            self.budget_seconds is not None
            and self.age_seconds is not None
            and self.age_seconds > self.budget_seconds
        )

    @property
    def late(self) -> bool:
        """Past half its budget, i.e. one schedule interval missed under the default budget."""
        return (
            self.budget_seconds is not None
            and self.age_seconds is not None
            and self.age_seconds > self.budget_seconds / 2
        )

    @property
    def failed(self) -> bool:
        """Whether the latest run with a verdict failed."""
        return self.last_verdict is not None and self.last_verdict.status == "error"

    @property
    def signals(self) -> Signals:
        """What the colour rules look at (`zakaz_health.rules`)."""
        return Signals(
            installed=self.installed,
            enabled=self.enabled,
            off_by_design=self.off_by_design,
            last_run_failed=self.failed,
            stale=self.stale,
            late=self.late,
            worker_alive=self.queue.worker_alive if self.queue is not None else None,
            alerts=self.alert_kinds,
            ever_ran=self.last_run is not None,
            ever_succeeded=self.last_success_at is not None,
            partial=self.last_verdict is not None and self.last_verdict.partial,
        )

    @property
    def verdict(self) -> Grade:
        """The card's colour, its words, and the rule that chose them."""
        return grade(self.signals)

    @property
    def grade(self) -> tuple[Colour, str]:
        """The card colour and the words that explain it."""
        verdict = self.verdict
        return verdict.colour, verdict.reason

    def to_dict(self) -> dict[str, Any]:
        """JSON-simple form, as `/healthz/{source}` serves it."""
        colour, reason = self.grade
        return {
            "source": self.source,
            "title": self.title,
            "installed": self.installed,
            "enabled": self.enabled,
            "state": colour,
            "reason": reason,
            "last_run": self.last_run.to_dict() if self.last_run else None,
            "last_success_at": iso(self.last_success_at),
            "rows": self.last_success_rows,
            "rows_loaded_total": self.rows_loaded_total,
            "rows_rejected_total": self.rows_rejected_total,
            "freshness": self.freshness_dict(),
            "queue_depth": self.queue.depth if self.queue else None,
            "failed_jobs": self.queue.failed_jobs if self.queue else None,
            "workers": self.queue.workers if self.queue else None,
            "worker_alive": self.queue.worker_alive if self.queue else None,
            "open_alerts": self.open_alerts,
        }

    def freshness_dict(self) -> dict[str, Any]:
        """Freshness against the manifest's budget."""
        return {
            "source": self.source,
            "last_success_at": iso(self.last_success_at),
            "age_seconds": self.age_seconds,
            "budget_seconds": self.budget_seconds,
            "stale": self.stale,
            "late": self.late,
            "last_data_date": self.last_data_date.isoformat() if self.last_data_date else None,
            "days_behind": self.days_behind,
        }


@dataclass(frozen=True)
class Snapshot:
    """Every source's state, the open alerts, and whether Redis answered."""

    now: float
    sources: tuple[SourceState, ...]
    alerts: tuple[Alert, ...]
    redis_error: str | None

    def get(self, source: str) -> SourceState | None:
        """One source's state, or None when the source is unknown."""
        return next((s for s in self.sources if s.source == source), None)


def source_names(manifests: Iterable[SourceManifest]) -> list[str]:
    """The contract's sources, then any other installed one, by name."""
    installed = {m.name for m in manifests}
    return list(CONTRACT_SOURCES) + sorted(installed - set(CONTRACT_SOURCES))


def collect(
    wh: Warehouse,
    conn: redis.Redis | None,
    manifests: Iterable[SourceManifest],
    now: float,
) -> Snapshot:
    """Read every source's state; Redis trouble leaves the Redis fields empty, never fails."""
    by_name = {m.name: m for m in manifests}
    recent: dict[str, list[RunInfo]] = {}
    for row in wh.dicts(_RECENT_SQL, {"per_source": RECENT_RUNS_PER_SOURCE, "verdict_only": 0}):
        recent.setdefault(row["job"], []).append(RunInfo.from_row(row))
    verdicts = {
        row["job"]: RunInfo.from_row(row)
        for row in wh.dicts(_RECENT_SQL, {"per_source": 1, "verdict_only": 1})
    }
    totals = {row["job"]: row for row in wh.dicts(_TOTALS_SQL)}
    data_dates = {
        row["source"]: row["last_data_date"]
        for row in wh.dicts("SELECT source, last_data_date FROM v_data_freshness")
    }
    alerts = tuple(open_alerts(wh))
    today = datetime.fromtimestamp(now, MSK).date()

    redis_error: str | None = None
    queues: dict[str, QueueState] = {}
    enabled: dict[str, bool] = {}
    names = source_names(by_name.values())
    try:
        if conn is None:
            raise RedisError("no Redis connection")
        for name in names:
            enabled[name] = is_enabled(conn, name, by_name.get(name))
            # RQ's heartbeats are real time, whatever the platform's (virtual) clock says.
            queues[name] = queue_state(conn, name, now - clock.offset())
    except (RedisError, OSError) as exc:
        redis_error = scrub(str(exc)) or type(exc).__name__
        queues = {}
        enabled = {n: is_enabled(None, n, by_name.get(n)) for n in names}

    states = []
    for name in names:
        manifest = by_name.get(name)
        total = totals.get(name, {})
        last_success = total.get("last_success")
        data_date = data_dates.get(name)
        runs = recent.get(name, [])
        states.append(
            SourceState(
                source=name,
                title=manifest.title if manifest else name,
                installed=manifest is not None,
                enabled=enabled[name],
                budget_seconds=manifest.freshness_budget.total_seconds() if manifest else None,
                last_run=runs[0] if runs else None,
                last_verdict=verdicts.get(name),
                last_success_at=float(last_success) if last_success is not None else None,
                last_success_rows=(
                    int(total["last_success_rows"]) if last_success is not None else None
                ),
                rows_loaded_total=int(total.get("rows_loaded", 0)),
                rows_rejected_total=int(total.get("rows_rejected", 0)),
                last_data_date=data_date,
                days_behind=(today - data_date).days if data_date is not None else None,
                age_seconds=max(0.0, now - float(last_success))
                if last_success is not None
                else None,
                queue=queues.get(name),
                open_alerts=sum(1 for a in alerts if a.job == name),
                recent_runs=tuple(runs),
                off_by_design=manifest is not None and not manifest.enabled_by_default,
                alert_kinds=tuple((a.kind, a.severity) for a in alerts if a.job == name),
            )
        )
    return Snapshot(now=now, sources=tuple(states), alerts=alerts, redis_error=redis_error)


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO 8601 in Moscow time."""
    return datetime.fromtimestamp(ts, MSK).isoformat() if ts is not None else None


def _json_object(raw: object) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _iso_date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
