"""Queued runs: enqueueing a source's run on its RQ queue, and the RQ job that performs it.

One queue per source (queue name = source name). A run is enqueued at most once at a time:
a per-source *pending* key in Redis (SET NX) is taken when a run is queued and released when
it ends, so two triggers (API, scheduler, a second scheduler) can never queue two runs. The run
id is the RQ job id, and the run is recorded in `meta_job_runs` from `queued` on.

The RQ job is saved (status `created`) before the marker names it, so a marker whose job is
missing or finished is stale, never a trigger caught half-way. A transient failure is retried by
RQ after `RETRY_INTERVALS` (the worker must run RQ's scheduler, which moves a retry whose wait
is over back onto the queue); meanwhile the run shows as `queued` again.

A `started` job is in progress only while someone works it: when the worker holding it is gone
from Redis, has not beaten for `BUSY_HEARTBEAT_MAX_AGE_SECONDS`, works another job, or the run
has not held its source lock for a whole lock TTL after starting, the worker died (`kill -9`, a
lost container), so the job is moved to the failed registry and its marker released: the next
trigger is accepted, and its run closes the dead run's `running` row.
"""

from __future__ import annotations

import os
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Retry, Worker, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from zakaz_common import clock
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.errors import ConfigError, LockBusy, ZakazError
from zakaz_common.locks import KEY_PREFIX, Holder, lock_holder, lock_ttl_seconds
from zakaz_common.manifest import SourceManifest, get_manifest
from zakaz_common.migrate import migrate, pending
from zakaz_common.runs import RunRequest, execute, new_run_id, record_run
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings

#: Import path of the job function, as RQ stores it.
RUN_JOB = "zakaz_common.jobs.run_job"

#: Waits (seconds) before RQ retries a run that failed transiently: 1, 5, then 15 minutes.
RETRY_INTERVALS = (60, 300, 900)

#: Overrides `RETRY_INTERVALS` (comma-separated seconds): a simulated day (`make soak`) runs
#: through 24 hours in minutes, so its retries wait seconds, not minutes.
RETRY_INTERVALS_VARIABLE = "ZAKAZ_RETRY_INTERVALS_SECONDS"

#: How long finished job results stay in Redis.
RESULT_TTL_SECONDS = 86_400

#: How long failed jobs stay in the failed registry for the operator to inspect.
FAILURE_TTL_SECONDS = 7 * 86_400

#: Longest a trigger takes from saving a run's job to queueing it (one warehouse insert); a job
#: still `created` after this belongs to a trigger that died half-way, so its marker is stale.
ENQUEUE_GRACE_SECONDS = 60

#: A busy worker beats at least every 30 s (RQ's job monitoring interval; the thread worker every
#: 15 s): three missed beats mean it died with the job.
BUSY_HEARTBEAT_MAX_AGE_SECONDS = 90

#: Why a dead worker's job is in the failed registry.
DEAD_WORKER_MESSAGE = "abandoned: the worker running it stopped"

_DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


class RunConflict(ZakazError):
    """A run of this source is already queued or running."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        #: The run that is in the way.
        self.run_id = run_id


class QueueUnavailable(ZakazError):
    """Redis cannot be reached, so nothing can be queued."""

    transient = True


def retry_intervals() -> tuple[int, ...]:
    """The waits before RQ retries a transiently failed run: `RETRY_INTERVALS` or the override."""
    raw = os.environ.get(RETRY_INTERVALS_VARIABLE, "").strip()
    if not raw:
        return RETRY_INTERVALS
    try:
        waits = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(
            f"{RETRY_INTERVALS_VARIABLE}={raw[:60]!r}: use comma-separated whole seconds, e.g. 60,300,900"
        ) from None
    if not waits or any(w < 0 for w in waits):
        raise ConfigError(
            f"{RETRY_INTERVALS_VARIABLE}={raw[:60]!r}: waits must be 0 or more seconds"
        )
    return waits


def pending_key(source: str) -> str:
    """The Redis key holding the id of a source's queued or running run."""
    return f"{KEY_PREFIX}pending:{source}"


def queue_for(conn: redis.Redis, source: str) -> Queue:
    """The RQ queue of a source."""
    return Queue(source, connection=conn)


def pending_run(conn: redis.Redis, source: str) -> str | None:
    """The id of the source's queued or running run, clearing a stale marker."""
    raw = conn.get(pending_key(source))
    if raw is None:
        return None
    run_id = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        job: Job | None = Job.fetch(run_id, connection=conn)
    except NoSuchJobError:
        job = None
    if job is not None and job_in_progress(conn, job, source):
        return run_id
    # The job ended without releasing, or its worker died: the marker is stale.
    _release(conn, source, run_id)
    return None


def job_in_progress(conn: redis.Redis, job: Job, source: str) -> bool:
    """Whether a run's job is waiting or being worked; a dead worker's job is failed on the way."""
    status = job.get_status(refresh=False)
    if status == JobStatus.CREATED:
        age = (datetime.now(UTC) - job.created_at).total_seconds()
        if age < ENQUEUE_GRACE_SECONDS:
            return True  # a trigger is between saving the job and queueing it
        job.delete()
        return False
    if status is None or status in _DONE:
        return False
    if status == JobStatus.STARTED and _worker_died(conn, job, source):
        _fail_dead_job(conn, job, source)
        return False
    return True


def _worker_died(conn: redis.Redis, job: Job, source: str) -> bool:
    """Whether the worker of a started job is dead (see the module docstring)."""
    now = datetime.now(UTC)
    worker = (
        Worker.find_by_key(Worker.redis_worker_namespace_prefix + job.worker_name, connection=conn)
        if job.worker_name
        else None
    )
    if worker is None or worker.get_current_job_id() not in (None, job.id):
        return True
    beat = worker.last_heartbeat
    if beat is None or (now - beat).total_seconds() > BUSY_HEARTBEAT_MAX_AGE_SECONDS:
        return True
    # A live run takes its lock within seconds of starting and renews it within the TTL; a
    # killed one lets it expire long before its worker's key does (up to RQ's TTL + 60 s).
    ttl = lock_ttl_seconds()
    started = job.started_at
    if started is None or (now - started).total_seconds() < 2 * ttl:
        return False
    holder = lock_holder(conn, source)
    return not (holder is False or (isinstance(holder, Holder) and holder.run_id == job.id))


def _fail_dead_job(conn: redis.Redis, job: Job, source: str) -> None:
    """Move a dead worker's job from the started to the failed registry."""
    queue = queue_for(conn, source)
    with conn.pipeline() as pipe:
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        FailedJobRegistry(queue=queue).add(
            job,
            ttl=job.failure_ttl or FAILURE_TTL_SECONDS,
            exc_string=DEAD_WORKER_MESSAGE,
            pipeline=pipe,
        )
        StartedJobRegistry(queue=queue).remove_executions(job, pipeline=pipe)
        pipe.execute()


def enqueue_run(
    conn: redis.Redis,
    manifest: SourceManifest,
    request: RunRequest,
    *,
    wh: Warehouse,
    trigger: str,
    run_id: str | None = None,
    retry: bool = True,
) -> str:
    """Queue one run of a source; raises RunConflict or QueueUnavailable.

    With `retry=False` a transient failure is not retried (a run someone waits for, as
    `zakaz run` through a running `zakaz up`, fails at once like an inline one).
    """
    run_id = run_id or new_run_id()
    params = request.as_params()
    queue = queue_for(conn, manifest.name)
    waits = retry_intervals() if retry else ()
    job = queue.create_job(
        RUN_JOB,
        args=(manifest.name, run_id, params, trigger),
        job_id=run_id,
        timeout=int(manifest.job_timeout.total_seconds()),
        retry=Retry(max=len(waits), interval=list(waits)) if waits else None,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=f"{manifest.name} run ({trigger})",
        status=JobStatus.CREATED,
    )
    try:
        job.save()
        _take_marker(conn, manifest, job)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise QueueUnavailable(f"Redis is not reachable, so no run can be queued: {exc}") from exc
    try:
        record_run(
            wh,
            run_id=run_id,
            job=manifest.name,
            status="queued",
            started_at=clock.now(),
            params=params,
            trigger=trigger,
        )
    except Exception:
        _drop(conn, manifest.name, job)
        raise
    try:
        queue.enqueue_job(job)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        _drop(conn, manifest.name, job)
        record_run(
            wh,
            run_id=run_id,
            job=manifest.name,
            status="error",
            started_at=clock.now(),
            finished_at=clock.now(),
            message=f"could not be queued: Redis went away ({exc})",
            params=params,
            trigger=trigger,
        )
        raise QueueUnavailable(f"Redis is not reachable, so no run can be queued: {exc}") from exc
    return run_id


def _take_marker(conn: redis.Redis, manifest: SourceManifest, job: Job) -> None:
    """Make `job` the source's pending run, or delete it and raise RunConflict."""
    waits = retry_intervals()
    ttl = int(manifest.job_timeout.total_seconds() * (len(waits) + 1) + sum(waits))
    key = pending_key(manifest.name)
    if conn.set(key, job.id, nx=True, ex=ttl):
        return
    holder = pending_run(conn, manifest.name)
    if holder is None and conn.set(key, job.id, nx=True, ex=ttl):
        return
    job.delete()
    holder = holder or "another run"
    raise RunConflict(f"a run of {manifest.name} is already queued or running ({holder})", holder)


def _drop(conn: redis.Redis, source: str, job: Job) -> None:
    """Undo a half-made enqueue: release the marker and delete the job (best effort)."""
    _release(conn, source, job.id)
    with suppress(RedisConnectionError, RedisTimeoutError):
        job.delete()


def run_job(source: str, run_id: str, params: dict[str, Any], trigger: str) -> dict[str, Any]:
    """The RQ job: one recorded run of a source.

    A transient failure is raised while RQ has retries left, so RQ retries it later; any other
    outcome returns the run's summary (a permanent failure is recorded, alerted, not retried).
    """
    manifest = get_manifest(source)
    core = load_settings(CoreSettings, source)
    wh = open_warehouse(load_settings(WarehouseSettings, source), core)
    if pending(wh):
        migrate(wh)
    request = RunRequest.from_params(params)
    job = get_current_job()
    retries_left = (job.retries_left or 0) if job is not None else 0
    summary = execute(
        manifest,
        request,
        wh=wh,
        core=core,
        run_id=run_id,
        trigger=trigger,
        retries_left=retries_left,
    )
    if isinstance(summary.error, LockBusy):
        # Another process (a CLI run) holds the lock: this queued run did not happen; say so.
        record_run(
            wh,
            run_id=run_id,
            job=source,
            status="error",
            started_at=clock.now(),
            finished_at=clock.now(),
            message=summary.message,
            params=params,
            trigger=trigger,
        )
    error = summary.error
    if (
        error is not None
        and getattr(error, "transient", False)
        and job is not None
        and (job.retries_left or 0) > 0
    ):
        # RQ re-queues the job after the next interval; until then the run is waiting again.
        record_run(
            wh,
            run_id=run_id,
            job=source,
            status="queued",
            started_at=clock.now(),
            message=f"retry in {job.get_retry_interval()} s after: {summary.message}",
            params=params,
            trigger=trigger,
        )
        raise error
    if job is not None:
        _release(job.connection, source, run_id)
    return summary.to_dict()


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _release(conn: redis.Redis, source: str, run_id: str) -> None:
    """Drop the pending marker if it still names this run (compare-and-delete)."""
    with suppress(RedisConnectionError, RedisTimeoutError):  # else the marker expires (TTL)
        conn.eval(_RELEASE, 1, pending_key(source), run_id)
