"""Schedules: every source's cron, in the business time zone, fired through rq-scheduler's store.

rq-scheduler knows cron only in UTC or the host's zone, so zakaz keeps one *one-shot* entry per
schedule in rq-scheduler's sorted set (`rq:scheduler:scheduled_jobs`), with a fixed id
(`zakaz-schedule-<name>`) and its score at the next slot, which croniter computes in the
business zone (`ZAKAZ_TZ`) and which is stored as a UTC instant. When a slot is due, the loop:

1. atomically (one Lua script) checks that the entry still points at that slot, takes the slot
   key `zakaz:slot:<name>:<slot>` (SET NX, with a TTL) and re-arms the entry at the first
   slot after now, so two scheduler instances, or a stale one, never fire one slot twice and
   missed slots (the scheduler was down) coalesce into one catch-up run;
2. fires the slot in-process: a source goes through `jobs.enqueue_run` with
   `trigger="schedule"` (the pending guard and `meta_job_runs` apply; a run still queued or
   running makes the slot a logged skip), a disabled source is skipped, and the system job
   `alerts` is queued by dotted path on the health service's queue.

Firing in the scheduler (rather than pushing a `fire_slot` job to the source's queue) means a
slot is decided at its time, not after the source's current run, and the source's queue only
ever holds runs. Registration is idempotent: an entry already armed with the same cron and zone
keeps its slot, so a restart never duplicates nor loses a due slot. The loop keeps rq-scheduler's
instance protocol (birth, heartbeat, lock, death) and stops cleanly between ticks on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import redis
from croniter import croniter  # type: ignore[import-untyped]
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq_scheduler import Scheduler  # type: ignore[import-untyped]

from zakaz_common import clock
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.errors import ConfigError
from zakaz_common.jobs import FAILURE_TTL_SECONDS, RESULT_TTL_SECONDS, RunConflict, enqueue_run
from zakaz_common.locks import KEY_PREFIX, redis_client
from zakaz_common.manifest import SourceManifest, get_manifest
from zakaz_common.manifest import manifests as installed_manifests
from zakaz_common.migrate import migrate, pending
from zakaz_common.runs import RunRequest
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings

log = logging.getLogger(__name__)

#: Dotted path of the alerts job; scheduled by path so the scheduler never imports the health service.
ALERTS_JOB = "zakaz_health.alerting.evaluate_alerts"

#: Name of the system schedule that evaluates alerts.
ALERTS = "alerts"

#: The alerts cadence (every 2 h, business time): frequent enough to catch a stale source early.
ALERTS_SCHEDULE = "0 */2 * * *"

#: Queue the alerts job goes to: the health service's worker works it.
ALERTS_QUEUE = "health"

#: Import path of the daily warehouse backup (ClickHouse BACKUP to the backup disk, keep N).
BACKUP_JOB = "zakaz_common.backup.scheduled_backup"

#: Name of the backup schedule.
BACKUP = "backup"

#: 03:30 Moscow time: after the nightly ad loads (00:00, 00:10), before people look at dashboards.
BACKUP_SCHEDULE = "30 3 * * *"


@dataclass(frozen=True)
class SystemJob:
    """A schedule that is not a source: a job queued by import path on the health queue."""

    cron: str
    func: str
    queue: str = ALERTS_QUEUE


#: The system schedules, by name: alerts every two hours and the daily backup.
SYSTEM_JOBS: dict[str, SystemJob] = {
    ALERTS: SystemJob(ALERTS_SCHEDULE, ALERTS_JOB),
    BACKUP: SystemJob(BACKUP_SCHEDULE, BACKUP_JOB),
}

#: Dotted path of `fire_slot`, the callable every schedule entry names.
FIRE_SLOT = "zakaz_common.scheduler.fire_slot"

#: Prefix of the fixed entry ids: one id per schedule, so re-registering never duplicates.
SCHEDULE_ID_PREFIX = "zakaz-schedule-"

#: Origin queue of the entries; the loop fires them itself, so no worker needs this queue.
SCHEDULER_QUEUE = "zakaz-scheduler"

#: How long a slot claim lives: far longer than any tick, so a lagging instance still sees it.
SLOT_CLAIM_TTL_SECONDS = 2 * 86_400

#: Seconds between ticks of `serve_scheduler`: well under the shortest (15 min) schedule.
DEFAULT_INTERVAL_SECONDS = 10.0

Outcome = Literal[
    "queued", "skipped_running", "skipped_disabled", "duplicate", "unknown_source", "failed"
]

_META = "zakaz_schedule"


@dataclass(frozen=True)
class Fired:
    """What became of one due slot."""

    name: str
    slot: datetime
    outcome: Outcome
    #: The queued run (or alerts job), or the run in the way when skipped as still running.
    job_id: str | None = None


def schedule_id(name: str) -> str:
    """The fixed rq-scheduler entry id of a schedule."""
    return f"{SCHEDULE_ID_PREFIX}{name}"


def slot_key(name: str, slot: datetime) -> str:
    """The Redis key claimed by whoever fires this slot of this schedule."""
    return f"{KEY_PREFIX}slot:{name}:{_stamp(slot)}"


def enabled_key(source: str) -> str:
    """The Redis key of a source's runtime enable flag."""
    return f"{KEY_PREFIX}enabled:{source}"


def fire_times(cron: str, after: datetime, tz: str | ZoneInfo, n: int = 1) -> list[datetime]:
    """The next `n` fire times (aware UTC) strictly after `after`, `cron` read in zone `tz`."""
    if not croniter.is_valid(cron):
        raise ConfigError(f"schedule {cron!r} is not a valid cron expression")
    it = croniter(cron, _utc(after).astimezone(_zone(tz)))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(n)]


def next_fire_times(
    manifest: SourceManifest, after: datetime, tz: str | ZoneInfo, n: int = 1
) -> list[datetime]:
    """The source's next `n` scheduled fire times (aware UTC) strictly after `after`."""
    return fire_times(manifest.schedule, after, tz, n)


def set_enabled(conn: redis.Redis, source: str, enabled: bool) -> None:
    """Turn a source's scheduled runs on or off at runtime (overrides `enabled_by_default`)."""
    conn.set(enabled_key(source), "1" if enabled else "0")


def is_enabled(conn: redis.Redis | None, source: str, manifest: SourceManifest | None) -> bool:
    """Whether the source's (or system job's) slots fire: the Redis flag when set, else the default.

    The default is the manifest's `enabled_by_default`; a system job (alerts, backup) is on; a
    name with neither (a source not installed here) is off. Without a connection (Redis down or
    not used) the default stands. The one rule for the scheduler, `zakaz up` and health.
    """
    default = manifest.enabled_by_default if manifest is not None else source in SYSTEM_JOBS
    if conn is None:
        return default
    raw = conn.get(enabled_key(source))
    if raw is None:
        return default
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return text.strip() == "1"


def register_schedules(
    conn: redis.Redis,
    manifests: Iterable[SourceManifest] | Mapping[str, SourceManifest],
    tz: str | ZoneInfo,
    *,
    now: datetime | None = None,
    include_alerts: bool = True,
) -> list[str]:
    """Register every schedule (and `alerts`) under its fixed id; returns the entry ids."""
    items = manifests.values() if isinstance(manifests, Mapping) else manifests
    wanted = {m.name: m.schedule for m in items}
    if include_alerts:
        wanted.update({name: job.cron for name, job in SYSTEM_JOBS.items()})
    zone = _zone(tz)
    moment = _utc(now)
    scheduler = _scheduler(conn)
    ids = []
    for name, cron in wanted.items():
        entry = schedule_id(name)
        meta = {_META: name, "cron": cron, "tz": zone.key}
        first = fire_times(cron, moment - timedelta(microseconds=1), zone)[0]
        if _same_entry(conn, entry, name, meta):
            conn.zadd(Scheduler.scheduled_jobs_key, {entry: _unix(first)}, nx=True)
        else:
            scheduler.schedule(
                first,
                FIRE_SLOT,
                args=[name],
                id=entry,
                meta=meta,
                queue_name=SCHEDULER_QUEUE,
                description=f"{name} at {cron} ({zone.key})",
            )
            log.info("schedule %s registered: %s (%s), first slot %s", name, cron, zone.key, first)
        ids.append(entry)
    for raw in conn.zrange(Scheduler.scheduled_jobs_key, 0, -1):
        member = raw.decode() if isinstance(raw, bytes) else str(raw)
        if member.startswith(SCHEDULE_ID_PREFIX) and member not in ids:
            scheduler.cancel(member)
            conn.delete(Job.key_for(member))
            log.info("schedule %s removed: its source is no longer installed", member)
    return ids


def scheduled_slots(conn: redis.Redis) -> dict[str, datetime]:
    """The armed slot (aware UTC) of every registered schedule, by name."""
    slots = {}
    armed = conn.zrange(Scheduler.scheduled_jobs_key, 0, -1, withscores=True)
    for raw, score in cast("list[tuple[bytes | str, float]]", armed):
        member = raw.decode() if isinstance(raw, bytes) else str(raw)
        if member.startswith(SCHEDULE_ID_PREFIX):
            slots[member.removeprefix(SCHEDULE_ID_PREFIX)] = datetime.fromtimestamp(score, UTC)
    return slots


def tick(
    conn: redis.Redis,
    *,
    wh: Warehouse,
    now: datetime | None = None,
    manifests: Mapping[str, SourceManifest] | None = None,
) -> list[Fired]:
    """Fire every schedule slot due at `now` exactly once, re-arming each entry."""
    moment = _utc(now)
    installed = installed_manifests() if manifests is None else manifests
    scheduler = _scheduler(conn)
    fired = []
    for job, when in scheduler.get_jobs(until=_unix(moment), with_times=True):
        name = job.meta.get(_META)
        if name is None:
            scheduler.enqueue_job(job)  # another rq-scheduler job: handled the stock way
            continue
        slot = when.replace(tzinfo=UTC)
        following = fire_times(job.meta["cron"], moment, job.meta["tz"])[0]
        if not _claim_and_rearm(conn, job.id, name, slot, following):
            fired.append(Fired(name, slot, "duplicate"))
            continue
        fired.append(_dispatch(conn, name, slot, wh=wh, manifests=installed))
    return fired


def fire(
    conn: redis.Redis,
    name: str,
    slot: datetime,
    *,
    wh: Warehouse,
    manifests: Mapping[str, SourceManifest] | None = None,
) -> Fired:
    """Fire one slot of one schedule unless someone already claimed it."""
    slot = _utc(slot)
    if not conn.set(slot_key(name, slot), "1", nx=True, ex=SLOT_CLAIM_TTL_SECONDS):
        return Fired(name, slot, "duplicate")
    installed = installed_manifests() if manifests is None else manifests
    return _dispatch(conn, name, slot, wh=wh, manifests=installed)


def fire_slot(source: str, slot_iso: str | None = None) -> str:
    """RQ-callable form of `fire` (settings from the environment); the slot defaults to the due one."""
    core = load_settings(CoreSettings)
    installed = installed_manifests()
    cron = SYSTEM_JOBS[source].cron if source in SYSTEM_JOBS else get_manifest(source).schedule
    if slot_iso is not None:
        slot = _utc(datetime.fromisoformat(slot_iso))
    else:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        slot = croniter(cron, start.astimezone(_zone(core.tz))).get_prev(datetime).astimezone(UTC)
    wh = open_warehouse(load_settings(WarehouseSettings), core)
    conn = redis_client(core.redis_url)
    return fire(conn, source, slot, wh=wh, manifests=installed).outcome


class SchedulerLoop:
    """rq-scheduler's instance protocol (birth, heartbeat, lock, death) around `tick`."""

    def __init__(
        self,
        conn: redis.Redis,
        *,
        wh: Warehouse,
        manifests: Mapping[str, SourceManifest],
        tz: str | ZoneInfo,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        name: str | None = None,
    ) -> None:
        self.conn = conn
        self.wh = wh
        self.manifests = dict(manifests)
        self.tz = _zone(tz)
        self.interval_seconds = interval_seconds
        self.scheduler = _scheduler(conn, interval=interval_seconds, name=name)
        self._stopping = threading.Event()

    def run_once(self, now: datetime | None = None) -> list[Fired]:
        """Re-register (healing a Redis that lost its data) and, holding the lock, tick once."""
        register_schedules(self.conn, self.manifests, self.tz, now=now)
        if not self.scheduler.acquire_lock():
            log.debug("another scheduler instance holds the lock; skipping this tick")
            return []
        try:
            return tick(self.conn, wh=self.wh, now=now, manifests=self.manifests)
        finally:
            self.scheduler.remove_lock()

    def run(self) -> None:
        """Tick every `interval_seconds` until `stop`; Redis outages are logged and waited out."""
        self.scheduler.register_birth()
        log.info("scheduler %s started (every %.1f s)", self.scheduler.name, self.interval_seconds)
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    self.scheduler.heartbeat()
                    self.run_once()
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    log.warning("Redis is not reachable (%s); the next tick retries", exc)
                elapsed = time.monotonic() - started
                self._stopping.wait(max(0.0, self.interval_seconds - elapsed))
        finally:
            with suppress(RedisConnectionError, RedisTimeoutError):
                self.scheduler.remove_lock()
                self.scheduler.register_death()
            log.info("scheduler %s stopped", self.scheduler.name)

    def stop(self) -> None:
        """Ask `run` to return after the current tick."""
        self._stopping.set()


def serve_scheduler(*, interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> None:
    """Run the scheduler service (what `zakaz serve scheduler` runs) until SIGTERM or SIGINT."""
    core = load_settings(CoreSettings, "scheduler")
    wh = open_warehouse(load_settings(WarehouseSettings, "scheduler"), core)
    if pending(wh):
        migrate(wh)
    installed = installed_manifests()
    if not installed:
        # The scheduler reads schedules from the installed source packages' entry points.
        log.warning("no source is installed in this environment: only alerts are scheduled")
    loop = SchedulerLoop(
        redis_client(core.redis_url),
        wh=wh,
        manifests=installed,
        tz=core.tz,
        interval_seconds=interval_seconds,
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler got %s; stopping after this tick", signal.Signals(signum).name)
        loop.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        loop.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# Checks that the entry still waits for this slot, claims the slot and re-arms the entry, in one
# step: returns 1 if this caller fires the slot, 0 if another instance already handled it.
_CLAIM = """
local score = redis.call('zscore', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
local claimed = redis.call('set', KEYS[2], '1', 'NX', 'EX', ARGV[4])
redis.call('zadd', KEYS[1], ARGV[3], ARGV[1])
if claimed then return 1 end
return 0
"""


def _claim_and_rearm(
    conn: redis.Redis, entry: str, name: str, slot: datetime, following: datetime
) -> bool:
    keys = [Scheduler.scheduled_jobs_key, slot_key(name, slot)]
    args: list[str | int] = [entry, _unix(slot), _unix(following), SLOT_CLAIM_TTL_SECONDS]
    return bool(conn.eval(_CLAIM, 2, *keys, *args))


def _dispatch(
    conn: redis.Redis,
    name: str,
    slot: datetime,
    *,
    wh: Warehouse,
    manifests: Mapping[str, SourceManifest],
) -> Fired:
    manifest = manifests.get(name)
    if manifest is None and name not in SYSTEM_JOBS:
        log.warning("slot %s of %s skipped: the source is not installed here", slot, name)
        return Fired(name, slot, "unknown_source")
    if not is_enabled(conn, name, manifest):
        log.info("slot %s of %s skipped: the source is disabled", slot, name)
        return Fired(name, slot, "skipped_disabled")
    try:
        if manifest is None:
            job_id = _queue_system(conn, name, slot)
        else:
            job_id = enqueue_run(conn, manifest, RunRequest(), wh=wh, trigger="schedule")
    except RunConflict as exc:
        log.info("slot %s of %s skipped: previous run still going (%s)", slot, name, exc.run_id)
        return Fired(name, slot, "skipped_running", exc.run_id)
    except Exception:
        # One schedule failing (ClickHouse away) must not keep the others from firing.
        log.exception("slot %s of %s could not be fired", slot, name)
        return Fired(name, slot, "failed")
    log.info("slot %s of %s fired: %s queued", slot, name, job_id)
    return Fired(name, slot, "queued", job_id)


def _queue_system(conn: redis.Redis, name: str, slot: datetime) -> str:
    system = SYSTEM_JOBS[name]
    job = Queue(system.queue, connection=conn).enqueue(
        system.func,
        job_id=f"zakaz-{name}-{_stamp(slot)}",
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=f"{name} ({_stamp(slot)} schedule)",
    )
    return str(job.id)


def _same_entry(conn: redis.Redis, entry: str, name: str, meta: Mapping[str, Any]) -> bool:
    try:
        job = Job.fetch(entry, connection=conn)
    except NoSuchJobError:
        return False
    current = {k: job.meta.get(k) for k in meta}
    return job.func_name == FIRE_SLOT and list(job.args) == [name] and current == dict(meta)


def _scheduler(conn: redis.Redis, **kwargs: Any) -> Any:
    return Scheduler(connection=conn, queue_name=SCHEDULER_QUEUE, **kwargs)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _utc(moment: datetime | None) -> datetime:
    # Naive means UTC, as everywhere in zakaz (timeutil.to_msk).
    if moment is None:
        return clock.utcnow()
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _unix(moment: datetime) -> int:
    return int(_utc(moment).timestamp())


def _stamp(slot: datetime) -> str:
    return _utc(slot).strftime("%Y%m%dT%H%M%SZ")
