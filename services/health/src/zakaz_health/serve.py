"""Running the health service: its HTTP API and the worker of its queue, as one process.

`zakaz serve health` and the health container run `serve`. The scheduler queues the alert job
(`zakaz_health.alerting.evaluate_alerts`) on the `health` queue every 2 h; a thread of this
process works that queue (an RQ `SimpleWorker`: the job is short and, with the embedded
warehouse, must share this process's engine). Another thread closes runs that a dead process
left `running` (`zakaz_health.sweep`, every 30 s). SIGTERM or SIGINT stops them all cleanly; if
the worker thread dies, `/healthz` answers 503 naming it.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import uvicorn
from zakaz_common.clickhouse import open_warehouse
from zakaz_common.errors import ConfigError
from zakaz_common.migrate import migrate, pending
from zakaz_common.redact import configure_logging
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings
from zakaz_common.worker import (
    SHUTDOWN_GRACE_SECONDS,
    WORKER_TTL_SECONDS,
    wait_for_redis,
    worker_connection,
    worker_name,
)
from zakaz_common.worker_classes import ThreadWorker

from zakaz_health.app import create_app
from zakaz_health.settings import SERVICE
from zakaz_health.sweep import Sweeper

log = logging.getLogger(__name__)

#: Port every zakaz service listens on inside its container (Prometheus scrapes it).
DEFAULT_PORT = 8000

#: The health service's RQ queue; the scheduler queues the alert job here.
QUEUE = "health"


class AlertWorker:
    """A thread working the `health` queue until stopped."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._stopping = threading.Event()
        self._worker: ThreadWorker | None = None
        self._thread = threading.Thread(target=self._run, name=f"{QUEUE}-worker", daemon=True)

    def start(self) -> None:
        """Start working the queue (waiting for Redis if it is not up yet)."""
        self._thread.start()

    def problem(self) -> str | None:
        """None while the worker thread runs, else what is wrong."""
        return None if self._thread.is_alive() else "the alert worker thread has stopped"

    def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Take no new job and wait up to `grace` seconds for the running one."""
        self._stopping.set()
        if self._worker is not None:
            self._worker.stop()
        self._thread.join(grace)

    def _run(self) -> None:
        try:
            conn = worker_connection(self._redis_url)
            if not wait_for_redis(conn, self._stopping):
                return
            self._worker = ThreadWorker(
                [QUEUE], name=worker_name(QUEUE), connection=conn, worker_ttl=WORKER_TTL_SECONDS
            )
            if not self._stopping.is_set():
                self._worker.work()
        except Exception:
            log.exception("the alert worker stopped on an error")


def serve(host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:  # noqa: S104 - a container's port
    """Serve the health API and work the alert queue until SIGTERM or SIGINT (main thread only)."""
    configure_logging()
    core = load_settings(CoreSettings, SERVICE)
    wh = open_warehouse(load_settings(WarehouseSettings, SERVICE), core)
    if pending(wh):
        migrate(wh)
    app = create_app(redis_url=core.redis_url, warehouse=wh)
    worker = AlertWorker(core.redis_url)
    app.state.health.local_worker = worker.problem
    sweeper = Sweeper(wh, core.redis_url)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            proxy_headers=True,
            timeout_graceful_shutdown=3,
        )
    )
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("health: got %s, stopping", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    # In a thread uvicorn leaves the signals alone: the main thread supervises both parts.
    api = threading.Thread(target=server.run, name="api", daemon=True)
    try:
        api.start()
        worker.start()
        sweeper.start()
        reported = False
        while not stopping.wait(0.5):
            if not api.is_alive():
                raise ConfigError(f"the health API stopped: could it listen on {host}:{port}?")
            problem = worker.problem()
            if problem and not reported:
                log.error("%s; /healthz answers 503 until the service is restarted", problem)
                reported = True
    finally:
        server.should_exit = True
        sweeper.stop()
        worker.stop()
        api.join(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("health: stopped")
