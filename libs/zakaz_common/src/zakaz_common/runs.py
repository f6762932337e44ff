"""Running a source once and recording it: one `meta_job_runs` row per run, whatever happens.

`execute` is what `zakaz run`, the RQ job and backfill all call: it takes the source lock,
closes the source's runs left `running` by a dead process (with the lock taken, no other run of
the source can be alive), records the run as `running` with its holder (host, pid), calls the
source's load with a `RunContext`, and records `success`, `dry_run` or `error` with `metrics`
(a JSON string with at least `duration_ms`, and `duration` in seconds). A failed run raises an
alert; a successful one resolves the source's failure alert. A run that lost its lock, or whose
command was told to stop (`zakaz_common.interrupts`), ends `error`; if its outcome cannot be
recorded (disk full) the lock is let go all the same and the next run of the source closes the
row. A load that succeeded without some of its parts (`LoadOutcome.failed_parts`, see
`zakaz_common.parts`) raises a `partial` warning naming them, resolved by the next run that has
them all; a load whose parts all failed raises, so the run is an `error`. Keys of rejected rows
are held back by the run's publishes (`zakaz_common.load.HeldKeys`) and raise a `held_back`
warning.
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

from zakaz_common import clock, interrupts
from zakaz_common.alerts import raise_alert, resolve_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.deadline import Deadline
from zakaz_common.errors import ConfigError, LoadError, LockBusy, ZakazError
from zakaz_common.load import (
    FactSpec,
    HeldKeys,
    PublishResult,
    Reject,
    Scope,
    publish,
    record_rejects,
    stage,
)
from zakaz_common.locks import Lease, LockLost, source_lock
from zakaz_common.manifest import SourceManifest
from zakaz_common.marts import refresh_marts
from zakaz_common.redact import run_context, scrub
from zakaz_common.settings import CoreSettings
from zakaz_common.timeutil import today_msk

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "success", "error", "dry_run"]

#: Statuses after which a run will not change again.
FINAL_STATUSES = frozenset({"success", "error", "dry_run"})

#: Alert kind raised when a run fails and resolved when the next one succeeds.
RUN_FAILED = "run_failed"

#: Alert kind raised when a run held keys back because of rejected rows, resolved by the next
#: successful run that held nothing back.
HELD_BACK = "held_back"

#: How many held-back dates a run's counts and alert list.
HELD_DATES_SHOWN = 20

#: The message of a run closed because the process running it died without recording it.
ABANDONED_MESSAGE = "abandoned: the process running it stopped"

#: Alert kind raised when a run succeeds without some of its parts (a show's seat map…) and
#: resolved by the next successful run that has them all.
RUN_PARTIAL = "partial"

#: Where run rows are written: each status change adds a version of the run's row, and the
#: `meta_job_runs` view (migration 0013) shows only the newest, so readers see one row per run.
RUNS_LOG_TABLE = "meta_job_runs_log"

#: The earliest day a run may ask for: no upstream of ours has data before it, so an earlier
#: date is a typo (0025 for 2025); bounded dates also keep window arithmetic from overflowing.
EARLIEST_DATE = date(2000, 1, 1)

#: How far past today (Moscow) a window may reach: shows are sold up to a year ahead.
MAX_DAYS_AHEAD = 366

#: The longest window one run (or backfill) may span, about ten years; longer is a mistake.
MAX_WINDOW_DAYS = 3660

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
        if self.days is not None and not 1 <= self.days <= MAX_WINDOW_DAYS:
            raise ConfigError(
                f"--days must be at least 1 and at most {MAX_WINDOW_DAYS}, not {self.days}"
            )
        if self.to is not None and self.since is None:
            raise ConfigError("--to needs --since")
        if self.since is not None and self.to is not None and self.since > self.to:
            raise ConfigError(f"--since {self.since} is after --to {self.to}")
        if self.since is not None:
            self._check_dates(self.since, self.to)

    @staticmethod
    def _check_dates(since: date, to: date | None) -> None:
        latest = today_msk() + timedelta(days=MAX_DAYS_AHEAD)
        for flag, day in (("--since", since), ("--to", to)):
            if day is not None and not EARLIEST_DATE <= day <= latest:
                raise ConfigError(
                    f"{flag} {day} is out of range: dates are from {EARLIEST_DATE} to {latest} "
                    f"(today in Moscow + {MAX_DAYS_AHEAD} days)"
                )
        # Without --to the window ends today (or on --since when that is later).
        end = to if to is not None else max(today_msk(), since)
        span = (end - since).days + 1
        if span > MAX_WINDOW_DAYS:
            raise ConfigError(
                f"the window {since}..{end} is {span} days; at most {MAX_WINDOW_DAYS} fit in one "
                "run or backfill: split it"
            )

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
    #: What failed while the rest loaded, one line per kind of part (`PartTally.settle`): the
    #: run is a success with a `partial` warning alert naming them.
    failed_parts: list[str] = field(default_factory=list)


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
    #: The run's hold on the source lock; writes check it first (`ensure_held`).
    lease: Lease
    #: The run's time budget, started when the run began; the source's clients respect it.
    deadline: Deadline = field(default_factory=Deadline.unbounded)
    #: Keys of this run's rejected rows, which its publishes leave as they are.
    held: HeldKeys = field(default_factory=HeldKeys)
    #: Live keys the publishes kept at their last good value because of rejected rows.
    held_back: int = 0
    #: Business dates (ISO) of the held keys and of the rejected rows' keys.
    held_dates: set[str] = field(default_factory=set)
    #: Facts not published at all in this run: too many of their rows were rejected.
    withheld: set[str] = field(default_factory=set)
    #: Rows the warehouse refused while staging (counted into the run's `rows_rejected`).
    refused: int = 0
    _published: set[str] = field(default_factory=set, repr=False)

    @property
    def source(self) -> str:
        """The source's name."""
        return self.manifest.name

    def stage(self, spec: FactSpec, rows: Iterable[Mapping[str, Any]]) -> int:
        """Stage rows of this run for a fact; a row the warehouse refuses becomes a reject."""
        return stage(self.wh, spec, self.run_id, rows, self.loaded_at, on_reject=self._refused)

    def _refused(self, reject: Reject) -> None:
        self.refused += 1
        self.reject([reject])

    def publish(self, spec: FactSpec, scope: Scope, *, retract: bool = True) -> PublishResult:
        """Publish this run's staged rows into a fact, holding back the keys of rejected rows."""
        self.lease.ensure_held()
        result = publish(
            self.wh,
            spec,
            self.run_id,
            scope,
            loaded_at=self.loaded_at,
            retract=retract,
            held=self.held.for_fact(spec.fact),
        )
        self.published(spec, result)
        return result

    def published(self, spec: FactSpec, result: PublishResult) -> None:
        """Note a publish of this run (`publish` does; a source publishing itself calls it)."""
        self._published.add(spec.fact)
        self.held_back += result.held
        self.held_dates.update(result.held_dates)
        if result.withheld:
            self.withheld.add(spec.fact)

    def reject(self, rejects: Sequence[Reject]) -> int:
        """Record rejected rows of this run; their keys are held back by later publishes.

        Rejects must be recorded before the facts they name are published: afterwards their
        keys could no longer be held back, so that is refused as a programming error.
        """
        late = {fact for r in rejects for fact in r.facts} & self._published
        if late:
            raise RuntimeError(
                f"rejects for {', '.join(sorted(late))} recorded after publishing it: "
                "record rejects before publishing"
            )
        for r in rejects:
            self.held.add(r)
            self.held_dates.update(v.isoformat() for v in (r.key or {}).values() if _is_date(v))
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
    #: Parts that failed in a run that succeeded otherwise (`LoadOutcome.failed_parts`).
    failed_parts: list[str] = field(default_factory=list)
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
    """Write (or rewrite) a run's row: a new version in the log behind `meta_job_runs`."""
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
    wh.insert(RUNS_LOG_TABLE, [row], _RUN_COLUMNS)


def get_run(wh: Warehouse, run_id: str) -> dict[str, Any] | None:
    """One run's live row, or None."""
    found = wh.dicts(
        "SELECT run_id, job AS source, status, started_at, finished_at, rows_processed, "
        "rows_rejected, message, metrics, params, trigger FROM meta_job_runs "
        "WHERE run_id = {run_id:String} LIMIT 1",
        {"run_id": run_id},
    )
    return found[0] if found else None


def latest_runs(wh: Warehouse, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first (optionally of one source)."""
    return wh.dicts(
        "SELECT run_id, job AS source, status, started_at, finished_at, rows_processed, "
        "rows_rejected, message, metrics FROM meta_job_runs "
        "WHERE ({job:String} = '' OR job = {job:String}) "
        "ORDER BY started_at DESC, _ver DESC LIMIT {limit:UInt32}",
        {"job": job or "", "limit": limit},
    )


def open_runs(
    wh: Warehouse, source: str | None = None, statuses: Sequence[Status] = ("running",)
) -> list[dict[str, Any]]:
    """Runs (optionally of one source) whose live row has one of `statuses`, oldest first."""
    return wh.dicts(
        "SELECT run_id, job AS source, status, started_at, rows_processed, rows_rejected, "
        "message, metrics, params, trigger FROM meta_job_runs "
        "WHERE status IN {statuses:Array(String)} "
        "AND ({job:String} = '' OR job = {job:String}) ORDER BY started_at",
        {"statuses": list(statuses), "job": source or ""},
    )


def close_abandoned(wh: Warehouse, run: Mapping[str, Any]) -> None:
    """Record a run (a row of `open_runs`) as `error`: the process running it died."""
    started = run["started_at"]
    record_run(
        wh,
        run_id=run["run_id"],
        job=run["source"],
        status="error",
        started_at=started.timestamp() if hasattr(started, "timestamp") else float(started),
        finished_at=clock.now(),
        rows_processed=int(run.get("rows_processed") or 0),
        rows_rejected=int(run.get("rows_rejected") or 0),
        message=ABANDONED_MESSAGE,
        metrics=_json_object(run.get("metrics")),
        params=_json_object(run.get("params")),
        trigger=str(run.get("trigger") or "cli"),
    )
    log.warning("closed run %s of %s: %s", run["run_id"], run["source"], ABANDONED_MESSAGE)


def _json_object(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


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
    with run_context(manifest.name, run_id):
        return _execute(
            manifest,
            request,
            wh=wh,
            core=core,
            run_id=run_id,
            trigger=trigger,
            retries_left=retries_left,
        )


def _execute(
    manifest: SourceManifest,
    request: RunRequest,
    *,
    wh: Warehouse,
    core: CoreSettings,
    run_id: str,
    trigger: str,
    retries_left: int,
) -> RunSummary:
    params = request.as_params()
    started = clock.now()
    # A stop signal only lands inside the load (`_run_locked`); everywhere else here it is noted,
    # so taking the lock, recording the run and letting the lock go are never cut short.
    with interrupts.deferred():
        try:
            with source_lock(
                manifest.name, redis_url=core.redis_url, data_dir=core.data_dir, run_id=run_id
            ) as lease:
                for dead in open_runs(wh, manifest.name):
                    if dead["run_id"] != run_id:
                        close_abandoned(wh, dead)
                record_run(
                    wh,
                    run_id=run_id,
                    job=manifest.name,
                    status="running",
                    started_at=started,
                    metrics={"lock": lease.where, "holder": lease.holder.as_dict()},
                    params=params,
                    trigger=trigger,
                )
                summary = _run_locked(
                    manifest, request, wh=wh, core=core, run_id=run_id, started=started, lease=lease
                )
                summary = _confirm(summary, lease)
                summary.counts.setdefault("lock", lease.where)
                recorded = _record_outcome(
                    wh, summary, job=manifest.name, started=started, params=params, trigger=trigger
                )
                if recorded and not request.dry_run and interrupts.interrupted() is None:
                    # After the outcome is recorded, so v_data_freshness shows it; after a failed
                    # run too, which may have published part of its work.
                    _refresh(wh, summary.counts)
        except LockBusy as exc:
            # The run never started: another one is doing the work, so nothing is recorded.
            return RunSummary(manifest.name, run_id, "error", message=str(exc), error=exc)
        retried = retries_left > 0 and bool(getattr(summary.error, "transient", False))
        try:
            if summary.status == "error" and not retried:
                raise_alert(
                    wh,
                    manifest.name,
                    RUN_FAILED,
                    "error",
                    f"{manifest.name} run failed: {summary.message}",
                )
            elif summary.status == "success":
                resolve_alerts(wh, manifest.name, RUN_FAILED)
            if summary.status == "success":
                _alert_partial(wh, manifest.name, summary)
                _held_alert(wh, manifest.name, summary)
        except ZakazError as exc:
            log.error("the alert of run %s could not be stored: %s", run_id, exc)
    return summary


def _confirm(summary: RunSummary, lease: Lease) -> RunSummary:
    """The summary to record: `error` if the lock was lost or a stop signal arrived meanwhile."""
    if summary.status == "error":
        return summary
    try:
        lease.ensure_held()
    except (LockLost, interrupts.Interrupted) as exc:
        log.error("run %s of %s: %s", summary.run_id, summary.source, exc)
        summary.status, summary.message, summary.error = "error", str(exc), exc
    return summary


def _record_outcome(
    wh: Warehouse,
    summary: RunSummary,
    *,
    job: str,
    started: float,
    params: Mapping[str, Any],
    trigger: str,
) -> bool:
    """Write the run's outcome; on failure log it and turn the summary into `error`."""
    try:
        record_run(
            wh,
            run_id=summary.run_id,
            job=job,
            status=summary.status,
            started_at=started,
            finished_at=clock.now(),
            rows_processed=summary.rows_processed,
            rows_rejected=summary.rows_rejected,
            message=summary.message,
            metrics={
                "duration_ms": summary.duration_ms,
                "duration": summary.duration_ms / 1000,
                **summary.counts,
            },
            params=params,
            trigger=trigger,
        )
    except ZakazError as exc:
        # The row stays `running`; the next run of the source (or the health service) closes it.
        log.error("the outcome of run %s could not be recorded: %s", summary.run_id, exc)
        summary.status = "error"
        summary.message = scrub(f"the outcome could not be recorded: {exc}")
        summary.error = exc
        return False
    return True


def _held_alert(wh: Warehouse, source: str, summary: RunSummary) -> None:
    """Warn about keys held back by rejected rows; resolve the warning once a run holds none."""
    if "held_back" in summary.counts:
        dates = ", ".join(summary.counts.get("held_back_dates", [])) or "unknown dates"
        raise_alert(
            wh,
            source,
            HELD_BACK,
            "warning",
            f"{source}: {summary.counts['held_back']} keys kept at their last good value "
            f"because rows of them were rejected ({dates}); fix the rows upstream, see rejects",
        )
    else:
        resolve_alerts(wh, source, HELD_BACK)


def _alert_partial(wh: Warehouse, source: str, summary: RunSummary) -> None:
    """Warn about the parts a successful run went without, or resolve the warning."""
    if summary.failed_parts:
        raise_alert(
            wh,
            source,
            RUN_PARTIAL,
            "warning",
            f"{source} run {summary.run_id} succeeded without some of its parts: "
            + "; ".join(summary.failed_parts),
        )
    else:
        resolve_alerts(wh, source, RUN_PARTIAL)


def _run_locked(
    manifest: SourceManifest,
    request: RunRequest,
    *,
    wh: Warehouse,
    core: CoreSettings,
    run_id: str,
    started: float,
    lease: Lease,
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
        lease=lease,
        deadline=Deadline.for_run(manifest),
    )
    try:
        with interrupts.raising():
            outcome = manifest.load_function()(ctx)
            # A stop signal the load caught and went on from still ends the run.
            interrupts.raise_if_interrupted()
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
    message = outcome.message
    if outcome.failed_parts:
        counts["failed_parts"] = list(outcome.failed_parts)
        partial = "partial: " + "; ".join(outcome.failed_parts)
        message = f"{message}; {partial}" if message else partial
    if ctx.held_back or ctx.withheld:
        counts["held_back"] = ctx.held_back
        counts["held_back_dates"] = sorted(ctx.held_dates)[:HELD_DATES_SHOWN]
        held = held_message(ctx)
        message = f"{message}; {held}" if message else held
    if ctx.withheld:
        counts["withheld_facts"] = sorted(ctx.withheld)
    status: Status = "dry_run" if request.dry_run else "success"
    return RunSummary(
        manifest.name,
        run_id,
        status,
        rows_processed=outcome.rows_processed,
        rows_rejected=outcome.rows_rejected + ctx.refused,
        duration_ms=_ms_since(started),
        message=scrub(message),
        counts=counts,
        failed_parts=list(outcome.failed_parts),
    )


def held_message(ctx: RunContext) -> str:
    """One sentence on what this run held back because of rejected rows."""
    dates = sorted(ctx.held_dates)
    shown = ", ".join(dates[:HELD_DATES_SHOWN]) + (" …" if len(dates) > HELD_DATES_SHOWN else "")
    text = (
        f"{ctx.held_back} keys kept at their last good value because rows of them were "
        f"rejected (dates {shown or 'unknown'}; see rejects)"
    )
    if ctx.withheld:
        text += f"; not published at all, too many rejects: {', '.join(sorted(ctx.withheld))}"
    return text


def _is_date(value: object) -> bool:
    return isinstance(value, date)


def _refresh(wh: Warehouse, counts: dict[str, Any]) -> None:
    """Rebuild the marts; a failure leaves the previous rows in place and is logged."""
    try:
        counts["marts_ms"] = refresh_marts(wh).duration_ms
    except LoadError as exc:
        log.warning("mart refresh failed (dashboards keep the previous one): %s", exc)
        counts["marts_error"] = str(exc)[:300]


def _ms_since(started: float) -> int:
    return int((clock.now() - started) * 1000)
