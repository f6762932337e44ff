"""RQ's worker and scheduler classes adapted to zakaz (as `rq/worker/worker_classes.py` is RQ's).

- `ThreadWorker`: a `SimpleWorker` that can run in any thread (the embedded warehouse's worker
  lives in a thread of the API's process): no signal handlers, timer-based job timeouts, a
  stop-aware poll of the queue, heartbeats during long jobs, RQ's scheduler in a thread.
- `ForkingWorker`: RQ's forking `Worker` whose second stop request abandons the running job
  cleanly (`RunAbandoned` in the work horse) instead of killing it.

Both register again when a Redis restart has forgotten them. `zakaz_common.worker` decides which
one a source gets and how it runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from contextlib import suppress
from datetime import timedelta
from types import FrameType
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker, Worker, worker_registration
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.scheduler import run as run_scheduler
from rq.timeouts import TimerDeathPenalty
from rq.utils import now
from rq.worker import BaseWorker, WorkerStatus

from zakaz_common.errors import ZakazError

#: Seconds between two looks at the queue by the thread worker: how soon it sees a job or a stop.
POLL_SECONDS = 1.0

#: Seconds between heartbeats of the thread worker while a job runs (`SimpleWorker` sends none).
BUSY_HEARTBEAT_SECONDS = 15.0

#: Longest wait between two attempts to reach Redis after it went away.
MAX_REDIS_WAIT_SECONDS = 30.0


class RunAbandoned(ZakazError):
    """The service stopped while the run was going; RQ re-queues it for the next start."""

    transient = True

    def __init__(self, message: str = "the service stopped during the run") -> None:
        super().__init__(message)


def register_again_if_forgotten(worker: BaseWorker) -> bool:
    """Re-register a live worker that Redis forgot (restarted without its data); True if it did.

    RQ's heartbeat only refreshes the worker's hash, so without this a worker that outlived a
    Redis restart would keep working yet be missing from its queue's workers (and look dead).
    """
    if worker.connection.hexists(worker.key, "birth"):
        return False
    with worker.connection.pipeline() as pipe:
        pipe.hset(worker.key, mapping=worker.serialize())
        worker_registration.register(worker, pipe)
        pipe.expire(worker.key, worker.worker_ttl + 60)
        pipe.execute()
    worker.log.warning(
        "Worker %s: Redis had forgotten it (restarted?); registered again", worker.name
    )
    return True


class ThreadScheduler(RQScheduler):
    """RQ's scheduler (it re-queues retries when due) in a thread instead of a forked process."""

    def _install_signal_handlers(self) -> None:
        """Signals belong to the main thread; the worker calls `request_stop` directly."""

    def start(self) -> threading.Thread:
        """Run the scheduling loop in a daemon thread."""
        self._status = self.Status.STARTED
        thread = threading.Thread(target=run_scheduler, args=(self,), name="rq-scheduler")
        thread.daemon = True
        self._process = thread  # type: ignore[assignment]
        thread.start()
        return thread

    def work(self) -> None:
        """RQ's scheduling loop; a Redis outage pauses it instead of ending it."""
        wait = 1.0
        while True:
            try:
                super().work()  # type: ignore[no-untyped-call]
                return
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if self._stop_requested:
                    return
                self.log.warning("scheduler: Redis is not reachable (%s)", exc)
                time.sleep(wait)
                wait = min(wait * 2, MAX_REDIS_WAIT_SECONDS)


class ThreadWorker(SimpleWorker):
    """An RQ `SimpleWorker` that runs in any thread and is stopped by `stop` or `abandon`."""

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stopping = threading.Event()
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._thread_id: int | None = None

    def stop(self) -> None:
        """Take no new job; `work` returns once the current job, if any, has ended."""
        self._stop_requested = True
        self._stopping.set()

    def abandon(self) -> bool:
        """Raise `RunAbandoned` inside the running job; False when no job is running."""
        if self._thread_id is None or self.get_state() != WorkerStatus.BUSY:
            return False
        # What RQ's TimerDeathPenalty does to time a job out in a thread.
        changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self._thread_id), ctypes.py_object(RunAbandoned)
        )
        return bool(changed == 1)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop, in the calling thread."""
        self._thread_id = threading.get_ident()
        return bool(super().work(*args, **kwargs))

    def _install_signal_handlers(self) -> None:
        """Signals belong to the main thread's supervisor, which calls `stop`."""

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat; registers the worker again if Redis has forgotten it."""
        super().heartbeat(timeout, pipeline)
        if pipeline is None:
            register_again_if_forgotten(self)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """Register with Redis, then keep beating while jobs run."""
        super().bootstrap(*args, **kwargs)
        self._beat_stop.clear()
        self._beat = threading.Thread(target=self._beat_while_busy, name=f"{self.name}-beat")
        self._beat.daemon = True
        self._beat.start()

    def teardown(self) -> None:
        """Stop beating and unregister; with Redis away the key expires by itself."""
        self._beat_stop.set()
        if self._beat is not None:
            self._beat.join()
        try:
            super().teardown()  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.log.warning(
                "Worker %s: could not unregister (%s); its key expires", self.name, exc
            )

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """The next job, looking every `POLL_SECONDS`; None once `stop` was called."""
        if timeout is None:  # burst: one look
            return super().dequeue_job_and_maintain_ttl(None, max_idle_time)
        wait = POLL_SECONDS
        while not self._stopping.is_set():
            try:
                found = super().dequeue_job_and_maintain_ttl(None)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                self.log.warning("Worker %s: Redis is not reachable (%s)", self.name, exc)
                self._stopping.wait(wait)
                wait = min(wait * 2, MAX_REDIS_WAIT_SECONDS)
                continue
            if found is not None:
                return found
            wait = POLL_SECONDS
            self._stopping.wait(POLL_SECONDS)
        return None

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if burst:  # RQ enqueues what is due once, in this thread
            super()._start_scheduler(burst, logging_level, *args, **kwargs)
            return
        scheduler = ThreadScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            serializer=self.serializer,
        )
        self.scheduler = scheduler
        try:
            scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError):
            pass  # the scheduler's loop takes the lock once Redis answers
        else:
            if not scheduler.acquired_locks:
                return  # another worker's scheduler serves the queue; RQ checks again later
        scheduler.start()

    def stop_scheduler(self) -> None:
        """Stop the scheduler thread and let it release its locks."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        scheduler.request_stop()  # type: ignore[no-untyped-call]
        thread: object = getattr(scheduler, "_process", None)
        if isinstance(thread, threading.Thread):
            thread.join(timeout=scheduler.interval + 2)

    def _beat_while_busy(self) -> None:
        # The health checks expect a heartbeat every few minutes, also during a long job.
        while not self._beat_stop.wait(BUSY_HEARTBEAT_SECONDS):
            if self.get_state() == WorkerStatus.BUSY:
                with suppress(RedisConnectionError, RedisTimeoutError):
                    self.heartbeat()


class ForkingWorker(Worker):
    """RQ's forking `Worker`; a second stop request abandons the running job cleanly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._abandoning = False

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat; registers the worker again if Redis has forgotten it."""
        super().heartbeat(timeout, pipeline)
        if pipeline is None:
            register_again_if_forgotten(self)

    def setup_work_horse_signals(self) -> None:
        """In the work horse: SIGTERM abandons the run (recorded, re-queued); Ctrl+C is ignored."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _abandon_run)

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """Second stop request: abandon the job cleanly; a third one is RQ's cold shutdown."""
        asked = self._shutdown_requested_date
        if asked is not None and now() - asked < timedelta(seconds=1):
            return  # one stop request delivered twice (terminal and supervisor)
        if self.horse_pid and not self._abandoning:
            self._abandoning = True
            self.log.warning("Worker %s: abandoning the running job", self.name)
            with suppress(OSError):
                os.killpg(os.getpgid(self.horse_pid), signal.SIGTERM)
            return
        super().request_force_stop(signum, frame)


def _abandon_run(signum: int, frame: FrameType | None) -> None:
    raise RunAbandoned
