"""A source's RQ worker, and `serve_source`: the control API and the worker as one service.

One queue per source (queue name = source name). How the worker runs follows the warehouse:

- **Embedded chDB** (neither `CH_DSN` nor `CH_HOST` set): the engine belongs to one process and
  does not survive a fork, so the worker is a `ThreadWorker`, an RQ `SimpleWorker` (jobs run in
  the worker itself, no work horse) in a *thread* of the API's process, sharing its engine.
  RQ's signal-based parts only work in the main thread, so it takes stop requests from the
  supervisor instead, times jobs out with a timer, polls the queue every second so a stop is
  seen at once, and runs RQ's scheduler in a thread (see `worker_classes`).
- **ClickHouse server**: a `ForkingWorker`, RQ's normal forking `Worker` (a work horse per job,
  so a crashing job cannot take the worker down), in a *child process* forked before the API
  opens any connection, with RQ's scheduler forked beside it.

RQ's scheduler is what moves a transient failure's retry back onto the queue once its wait is
over (`jobs.RETRY_INTERVALS`); without it retries would never run.

Shutdown (SIGTERM or SIGINT): the API stops and the worker takes no new job; a running job gets
`SHUTDOWN_GRACE_SECONDS` to finish, then it is abandoned cleanly: `RunAbandoned` is raised
inside it, so the run is recorded, its lock released, and RQ re-queues it (it is transient)
for the next start. The process exits 0. A service killed outright (`kill -9`) leaves its job
`started`: the run's lock expires within its TTL (`zakaz_common.locks`), the next trigger finds
the job's worker dead (`jobs.job_in_progress`), fails the job and is accepted, and the new run
closes the dead run's `running` row. When RQ's work loop quits on its own (Redis away at
the wrong moment) a new worker starts once Redis answers; if the worker dies anyway, the API
stays up and `/healthz` answers 503 naming it, which marks the container unhealthy.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from types import FrameType
from typing import Literal, Protocol, overload
from urllib.parse import urlsplit

import redis
import uvicorn
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Worker
from rq.defaults import DEFAULT_WORKER_TTL
from rq.worker import BaseWorker

from zakaz_common.clickhouse import open_warehouse
from zakaz_common.errors import ConfigError
from zakaz_common.jobs import queue_for
from zakaz_common.locks import redis_available
from zakaz_common.manifest import SourceManifest
from zakaz_common.migrate import migrate, pending
from zakaz_common.redact import configure_logging
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings
from zakaz_common.worker_classes import (
    MAX_REDIS_WAIT_SECONDS,
    ForkingWorker,
    ThreadWorker,
)

log = logging.getLogger(__name__)

#: Seconds a running job may still take after a stop request before it is abandoned; with
#: `ABANDON_WAIT_SECONDS` it stays under Docker's default 10 s between SIGTERM and SIGKILL.
SHUTDOWN_GRACE_SECONDS = 6.0

#: Seconds an abandoned job gets to record itself and let go of its lock.
ABANDON_WAIT_SECONDS = 3.0

#: Worker TTL: a worker's Redis key expires `WORKER_TTL_SECONDS + 60` s after its last heartbeat,
#: so a killed worker disappears from the queue's workers within two minutes.
WORKER_TTL_SECONDS = 60

#: A worker whose last heartbeat is older than this is dead (the health service's rule too):
#: an idle RQ worker with the default TTL beats every `DEFAULT_WORKER_TTL` seconds.
HEARTBEAT_MAX_AGE_SECONDS = DEFAULT_WORKER_TTL + 60


def worker_name(source: str) -> str:
    """A unique, readable RQ worker name: source, host, pid."""
    return f"{source}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def live_workers(conn: redis.Redis, source: str, *, at: float | None = None) -> list[BaseWorker]:
    """The RQ workers of the source's queue whose last heartbeat is fresh."""
    moment = time.time() if at is None else at
    return [
        w
        for w in Worker.all(queue=queue_for(conn, source))
        if w.last_heartbeat is not None
        and moment - w.last_heartbeat.timestamp() <= HEARTBEAT_MAX_AGE_SECONDS
    ]


@overload
def make_worker(
    manifest: SourceManifest, conn: redis.Redis, *, embedded: Literal[True]
) -> ThreadWorker: ...
@overload
def make_worker(
    manifest: SourceManifest, conn: redis.Redis, *, embedded: Literal[False]
) -> ForkingWorker: ...
@overload
def make_worker(
    manifest: SourceManifest, conn: redis.Redis, *, embedded: bool
) -> ThreadWorker | ForkingWorker: ...
def make_worker(
    manifest: SourceManifest, conn: redis.Redis, *, embedded: bool
) -> ThreadWorker | ForkingWorker:
    """The RQ worker of a source's queue: a thread worker for the embedded warehouse, else forking.

    `conn` should be the worker's own connection: RQ raises its socket timeout for blocking reads.
    """
    cls: type[ThreadWorker | ForkingWorker] = ThreadWorker if embedded else ForkingWorker
    return cls(
        [manifest.name],
        name=worker_name(manifest.name),
        connection=conn,
        worker_ttl=WORKER_TTL_SECONDS,
    )


def worker_connection(redis_url: str) -> redis.Redis:
    """A Redis connection for a worker (fails fast on connect, no read timeout of its own)."""
    return redis.Redis.from_url(redis_url, socket_connect_timeout=5, health_check_interval=30)


def wait_for_redis(conn: redis.Redis, stopping: threading.Event) -> bool:
    """Wait until Redis answers; False when `stopping` was set first."""
    wait = 1.0
    while not stopping.is_set():
        if redis_available(conn):
            return True
        log.warning(
            "Redis is not reachable; the worker starts when it is (next try in %.0f s)", wait
        )
        stopping.wait(wait)
        wait = min(wait * 2, MAX_REDIS_WAIT_SECONDS)
    return False


def keep_working(
    manifest: SourceManifest,
    redis_url: str,
    stopping: threading.Event,
    *,
    embedded: bool,
    started: Callable[[ThreadWorker | ForkingWorker], None] | None = None,
    ended: Callable[[], None] | None = None,
) -> None:
    """Work the source's queue until `stopping` is set or the worker is told to stop.

    RQ's work loop quits for good when Redis is away at the wrong moment (starting, or between
    two jobs); then a new worker starts once Redis answers again, with growing waits.
    `started` sees each new worker; `ended` runs after each one's loop has returned.
    """
    conn = worker_connection(redis_url)
    wait = 1.0
    while wait_for_redis(conn, stopping):
        worker: ThreadWorker | ForkingWorker | None = None
        try:
            worker = make_worker(manifest, conn, embedded=embedded)
            if started is not None:
                started(worker)
            if not stopping.is_set():
                # RQ sets its loggers to INFO unless told: follow the process's own level.
                level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
                worker.work(with_scheduler=True, logging_level=level)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("the worker of %s lost Redis: %s", manifest.name, exc)
        if ended is not None:
            ended()
        if stopping.is_set() or (worker is not None and _told_to_stop(worker)):
            return
        log.warning("the worker of %s quit; a new one starts in %.0f s", manifest.name, wait)
        stopping.wait(wait)
        wait = min(wait * 2, MAX_REDIS_WAIT_SECONDS)


def _told_to_stop(worker: BaseWorker) -> bool:
    # RQ notes a stop request (its signal handler, or ThreadWorker.stop) in these two.
    return bool(worker._stop_requested or worker._shutdown_requested_date is not None)


class _Runner(Protocol):
    def start(self) -> None: ...
    def problem(self) -> str | None: ...
    def stop(self, grace: float) -> None: ...


class WorkerThread:
    """The embedded warehouse's worker as `serve_source` runs it: `keep_working` in a thread."""

    def __init__(self, manifest: SourceManifest, redis_url: str) -> None:
        self._manifest = manifest
        self._redis_url = redis_url
        self._stopping = threading.Event()
        #: The current worker (a new one after RQ's loop quit on its own).
        self.worker: ThreadWorker | None = None
        self._thread = threading.Thread(target=self._run, name=f"{manifest.name}-worker")
        self._thread.daemon = True

    def start(self) -> None:
        """Start working in the background."""
        self._thread.start()

    def problem(self) -> str | None:
        """What is wrong with the worker, or None while it runs."""
        return None if self._thread.is_alive() else "the worker thread has stopped"

    def stop(self, grace: float) -> None:
        """Stop; a job still running after `grace` seconds is abandoned (and re-queued)."""
        self._stopping.set()
        worker = self.worker
        if worker is not None:
            worker.stop()
        self._thread.join(grace)
        if self._thread.is_alive() and worker is not None and worker.abandon():
            log.warning("the running job did not finish within %.0f s: abandoned", grace)
            self._thread.join(ABANDON_WAIT_SECONDS)
        if self._thread.is_alive():
            log.error("the worker thread did not stop; exiting without it")

    def _run(self) -> None:
        try:
            keep_working(
                self._manifest,
                self._redis_url,
                self._stopping,
                embedded=True,
                started=self._started,
            )
        except Exception:
            log.exception("the worker of %s stopped on an error", self._manifest.name)

    def _started(self, worker: ThreadWorker | ForkingWorker) -> None:
        if isinstance(worker, ThreadWorker):
            self.worker = worker


class _WorkerProcess:
    """A ClickHouse server's worker: `keep_working` (a `ForkingWorker`) in a child process."""

    def __init__(self, manifest: SourceManifest, redis_url: str) -> None:
        # Forked, not spawned: the child keeps hand-registered manifests and needs no re-import.
        context = multiprocessing.get_context("fork")
        self._process = context.Process(
            target=_work_in_child, args=(manifest, redis_url), name=f"{manifest.name}-worker"
        )

    def start(self) -> None:
        self._process.start()

    def problem(self) -> str | None:
        if self._process.is_alive():
            return None
        return f"the worker process has exited (code {self._process.exitcode})"

    def stop(self, grace: float) -> None:
        proc = self._process
        if proc.pid is None:
            return
        # Warm stop, then abandon the job (ForkingWorker), then RQ's cold shutdown, then kill.
        for wait in (max(grace, 1.5), ABANDON_WAIT_SECONDS, 2.0):
            if not proc.is_alive():
                return
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            proc.join(wait)
        if proc.is_alive():
            log.error("the worker process did not stop; killing it")
            proc.kill()
            proc.join()


def _work_in_child(manifest: SourceManifest, redis_url: str) -> None:
    stopping = threading.Event()

    def plain_signals() -> None:
        # Outside RQ's work loop (which installs its own handlers) a signal just stops.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signum, _frame: stopping.set())

    plain_signals()
    keep_working(manifest, redis_url, stopping, embedded=False, ended=plain_signals)


def serve_source(
    manifest: SourceManifest,
    *,
    host: str,
    port: int,
    grace_seconds: float = SHUTDOWN_GRACE_SECONDS,
) -> None:
    """Serve a source's control API and work its queue until SIGTERM or SIGINT (main thread only).

    Raises ZakazError when the service cannot start (warehouse owned elsewhere, port taken).
    """
    # Imported here: the service's health route imports `live_workers` from this module.
    from zakaz_common.service import create_app

    configure_logging("INFO")
    core = load_settings(CoreSettings, manifest.name)
    wh_settings = load_settings(WarehouseSettings, manifest.name)
    embedded = urlsplit(wh_settings.resolved_dsn(core.data_dir)).scheme == "chdb"
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: got %s, stopping", manifest.name, signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    runner: _Runner | None = None
    server: uvicorn.Server | None = None
    api: threading.Thread | None = None
    try:
        if not embedded:
            # Fork before this process opens any connection the child could inherit.
            runner = _WorkerProcess(manifest, core.redis_url)
            runner.start()
        wh = open_warehouse(wh_settings, core)
        if pending(wh):
            migrate(wh)
        if runner is None:
            runner = WorkerThread(manifest, core.redis_url)
            runner.start()
        app = create_app(manifest, redis_url=core.redis_url, warehouse=wh)
        app.state.runtime.local_worker = runner.problem
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=3)
        )
        # In a thread uvicorn leaves the signals alone: the main thread supervises both parts.
        api = threading.Thread(target=server.run, name="api")
        api.daemon = True
        api.start()
        _supervise(api, runner, stopping, where=f"{host}:{port}")
    finally:
        if server is not None:
            server.should_exit = True
        if runner is not None:
            runner.stop(grace_seconds)  # uvicorn drains its requests meanwhile
        if api is not None:
            api.join(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("%s: stopped", manifest.name)


def _supervise(
    api: threading.Thread, runner: _Runner, stopping: threading.Event, *, where: str
) -> None:
    reported = False
    while not stopping.wait(0.5):
        if not api.is_alive():
            raise ConfigError(f"the control API stopped: could it listen on {where}? see the log")
        problem = runner.problem()
        if problem and not reported:
            log.error("%s; /healthz answers 503 until the service is restarted", problem)
            reported = True
