"""Running a source once and recording it: one `meta_job_runs` row per run, whatever happens.

`execute` is what `zakaz run`, the RQ job and backfill all call: it takes the source lock,
records the run as `running`, calls the source's load with a `RunContext`, and records
`success`, `dry_run` or `error` with `metrics` (a JSON string with at least `duration_ms`).
A failed run raises an alert; a successful one resolves the source's failure alert.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from zakaz_common.alerts import raise_alert, resolve_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import ConfigError, LoadError, LockBusy, ZakazError
from zakaz_common.load import FactSpec, PublishResult, Reject, Scope, publish, record_rejects, stage
from zakaz_common.locks import source_lock
from zakaz_common.manifest import SourceManifest
from zakaz_common.marts import refresh_marts
from zakaz_common.redact import scrub
from zakaz_common.settings import CoreSettings
from zakaz_common.timeutil import today_msk

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "success", "error", "dry_run"]

#: Statuses after which a run will not change again.
FINAL_STATUSES = frozenset({"success", "error", "dry_run"})

#: Alert kind raised when a run fails and resolved when the next one succeeds.
RUN_FAILED = "run_failed"

_RUN_COLUMNS = [
    "run_id",
    "job",
    "status",
    "started_at",
    "finished_at",
    "rows_processed",
    "rows_rejected",
    "message",
    "metrics",
    "params",
    "trigger",
    "_ver",
]


@dataclass(frozen=True)
class RunRequest:
    """What a run was asked to do: a date window (or the source's default) and dry-run."""

    since: date | None = None
    to: date | None = None
    days: int | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.days is not None and (self.since is not None or self.to is not None):
            raise ConfigError("give either --days or --since/--to, not both")
        if self.days is not None and self.days < 1:
            raise ConfigError("--days must be at least 1")
        if self.to is not None and self.since is None:
            raise ConfigError("--to needs --since")
        if self.since is not None and self.to is not None and self.since > self.to:
            raise ConfigError(f"--since {self.since} is after --to {self.to}")

    def window(self, end: date, default_days: int | None) -> tuple[date, date] | None:
        """The inclusive date window: explicit, else the last N days ending at `end`, else None."""
        if self.since is not None:
            return self.since, self.to or max(end, self.since)
        days = self.days if self.days is not None else default_days
        if days is None:
            return None
        return end - timedelta(days=days - 1), end

    def as_params(self) -> dict[str, Any]:
        """JSON-simple form, as stored in `meta_job_runs.params` and sent to RQ."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "to": self.to.isoformat() if self.to else None,
            "days": self.days,
            "dry_run": self.dry_run,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunRequest:
        """The inverse of `as_params`."""
        since, to = params.get("since"), params.get("to")
        return cls(
            since=date.fromisoformat(since) if since else None,
            to=date.fromisoformat(to) if to else None,
            days=int(params["days"]) if params.get("days") is not None else None,
            dry_run=bool(params.get("dry_run", False)),
        )


@dataclass
class LoadOutcome:
    """What a source's load reports back."""

    rows_processed: int = 0
    rows_rejected: int = 0
    #: The source's own counts (rows per entity, upserts, retractions, API units…).
    counts: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass
class RunContext:
    """Everything a source's load needs for one run."""

    wh: Warehouse
    manifest: SourceManifest
    run_id: str
    request: RunRequest
    core: CoreSettings
    loaded_at: int
    today: date
    log: logging.Logger

    @property
    def source(self) -> str:
        """The source's name."""
        return self.manifest.name

    def stage(self, spec: FactSpec, rows: Iterable[Mapping[str, Any]]) -> int:
        """Stage rows of this run for a fact."""
        return stage(
            self.wh, spec, self.run_id, rows, self.loaded_at, on_reject=lambda r: self.reject([r])
        )

    def publish(self, spec: FactSpec, scope: Scope, *, retract: bool = True) -> PublishResult:
        """Publish this run's staged rows into a fact."""
        return publish(self.wh, spec, self.run_id, scope, loaded_at=self.loaded_at, retract=retract)

    def reject(self, rejects: Sequence[Reject]) -> int:
        """Record rejected rows of this run."""
        return record_rejects(self.wh, self.run_id, self.source, rejects)


@dataclass
class RunSummary:
    """The JSON summary `zakaz run` prints and the control API serves."""

    source: str
    run_id: str
    status: Status
    rows_processed: int = 0
    rows_rejected: int = 0
    duration_ms: int = 0
    message: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    #: The exception of a failed run (not serialised); lets the RQ job decide on retries.
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the run did what it was asked."""
        return self.status in {"success", "dry_run"}

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-simple data (the source's counts merged in)."""
        data: dict[str, Any] = dict(self.counts)
        data.update(
            source=self.source,
            run_id=self.run_id,
            status=self.status,
            rows_processed=self.rows_processed,
            rows_rejected=self.rows_rejected,
            duration_ms=self.duration_ms,
            message=self.message,
        )
        return data


def new_run_id() -> str:
    """A fresh run id."""
    return uuid.uuid4().hex


def record_run(
    wh: Warehouse,
    *,
    run_id: str,
    job: str,
    status: Status,
    started_at: float,
    finished_at: float | None = None,
    rows_processed: int = 0,
    rows_rejected: int = 0,
    message: str = "",
    metrics: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    trigger: str = "cli",
) -> None:
    """Write (or rewrite) a run's row in `meta_job_runs`."""
    row = (
        run_id,
        job,
        status,
        int(started_at),
        int(finished_at) if finished_at is not None else None,
        rows_processed,
        rows_rejected,
        scrub(message)[:2000],
        json.dumps(dict(metrics or {}), ensure_ascii=False, default=str),
        json.dumps(dict(params or {}), ensure_ascii=False),
        trigger,
        time.time_ns(),
    )
    wh.insert("meta_job_runs", [row], _RUN_COLUMNS)


def get_run(wh: Warehouse, run_id: str) -> dict[str, Any] | None:
    """One run's live row, or None."""
    found = wh.dicts(
        "SELECT run_id, job AS source, status, started_at, finished_at, rows_processed, "
        "rows_rejected, message, metrics, params, trigger FROM meta_job_runs FINAL "
        "WHERE run_id = {run_id:String} LIMIT 1",
        {"run_id": run_id},
    )
    return found[0] if found else None


def latest_runs(wh: Warehouse, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first (optionally of one source)."""
    return wh.dicts(
        "SELECT run_id, job AS source, status, started_at, finished_at, rows_processed, "
        "rows_rejected, message, metrics FROM meta_job_runs FINAL "
        "WHERE ({job:String} = '' OR job = {job:String}) "
        "ORDER BY started_at DESC, _ver DESC LIMIT {limit:UInt32}",
        {"job": job or "", "limit": limit},
    )


def execute(
    manifest: SourceManifest,
    request: RunRequest,
    *,
    wh: Warehouse,
    core: CoreSettings,
    run_id: str | None = None,
    trigger: str = "cli",
    retries_left: int = 0,
) -> RunSummary:
    """Run one load of a source under its lock and record it; never raises for a failed load.

    `retries_left` says whether a transient failure will be tried again (RQ); such a failure
    raises no alert, the last attempt's does.
    """
    run_id = run_id or new_run_id()
    params = request.as_params()
    started = time.time()
    try:
        with source_lock(manifest.name, redis_url=core.redis_url, data_dir=core.data_dir) as where:
            record_run(
                wh,
                run_id=run_id,
                job=manifest.name,
                status="running",
                started_at=started,
                params=params,
                trigger=trigger,
            )
            summary = _run_locked(
                manifest, request, wh=wh, core=core, run_id=run_id, started=started
            )
            summary.counts.setdefault("lock", where)
            status_metrics = {"duration_ms": summary.duration_ms, "lock": where, **summary.counts}
            record_run(
                wh,
                run_id=run_id,
                job=manifest.name,
                status=summary.status,
                started_at=started,
                finished_at=time.time(),
                rows_processed=summary.rows_processed,
                rows_rejected=summary.rows_rejected,
                message=summary.message,
                metrics=status_metrics,
                params=params,
                trigger=trigger,
            )
            if not request.dry_run:
                # After the outcome is recorded, so v_data_freshness shows it; after a failed
                # run too, which may have published part of its work.
                _refresh(wh, summary.counts)
    except LockBusy as exc:
        # The run never started: another one is doing the work, so nothing is recorded.
        return RunSummary(manifest.name, run_id, "error", message=str(exc), error=exc)
    retried = retries_left > 0 and bool(getattr(summary.error, "transient", False))
    if summary.status == "error" and not retried:
        raise_alert(
            wh, manifest.name, RUN_FAILED, "error", f"{manifest.name} run failed: {summary.message}"
        )
    elif summary.status == "success":
        resolve_alerts(wh, manifest.name, RUN_FAILED)
    return summary


def _run_locked(
    manifest: SourceManifest,
    request: RunRequest,
    *,
    wh: Warehouse,
    core: CoreSettings,
    run_id: str,
    started: float,
) -> RunSummary:
    ctx = RunContext(
        wh=wh,
        manifest=manifest,
        run_id=run_id,
        request=request,
        core=core,
        loaded_at=int(started),
        today=today_msk(),
        log=logging.getLogger(f"zakaz.{manifest.name}"),
    )
    try:
        outcome = manifest.load_function()(ctx)
    except Exception as exc:
        message = str(exc) if isinstance(exc, ZakazError) else f"{type(exc).__name__}: {exc}"
        message = scrub(message)
        log.error("run %s of %s failed: %s", run_id, manifest.name, message)
        return RunSummary(
            manifest.name,
            run_id,
            "error",
            duration_ms=_ms_since(started),
            message=message,
            error=exc,
        )
    counts = dict(outcome.counts)
    status: Status = "dry_run" if request.dry_run else "success"
    return RunSummary(
        manifest.name,
        run_id,
        status,
        rows_processed=outcome.rows_processed,
        rows_rejected=outcome.rows_rejected,
        duration_ms=_ms_since(started),
        message=scrub(outcome.message),
        counts=counts,
    )


def _refresh(wh: Warehouse, counts: dict[str, Any]) -> None:
    """Rebuild the marts; a failure leaves the previous rows in place and is logged."""
    try:
        counts["marts_ms"] = refresh_marts(wh).duration_ms
    except LoadError as exc:
        log.warning("mart refresh failed (dashboards keep the previous one): %s", exc)
        counts["marts_error"] = str(exc)[:300]


def _ms_since(started: float) -> int:
    return int((time.time() - started) * 1000)
