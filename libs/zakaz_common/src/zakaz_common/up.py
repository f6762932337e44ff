"""`zakaz up`: the whole platform in one process, for one machine.

What the compose topology runs as separate containers runs here as threads of one process
that owns the embedded warehouse (or talks to the configured ClickHouse server the same way):

- a private `redis-server` under `ZAKAZ_DATA_DIR/redis` when `REDIS_URL` is not set;
- the bundled sandbox upstreams with `--sandbox` (their settings set for every source);
- the scheduler (`scheduler.SchedulerLoop`, ticking every `ZAKAZ_SCHEDULER_INTERVAL_SECONDS`);
- a worker thread per installed source (`worker.WorkerThread`) and the health service's
  alert worker and sweeper;
- one HTTP server: the health service at `/` (status page, `/healthz…`, `/metrics`), every
  source's control API under `/sources/<source>/` (the same endpoints and token rules as its
  container), and the `/local/…` routes through which `zakaz status`, `check`, `run` and `sql`
  reach this process from another terminal (`zakaz_common.control`).

It prints the URLs, one line per finished run, and stops cleanly on Ctrl-C or SIGTERM: the
scheduler first, then the workers (a running job gets the grace period, then is abandoned,
recorded and its lock released), then the server, the sandbox and Redis.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import redis
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rq import Worker
from rq.worker_registration import unregister

from zakaz_common import clock
from zakaz_common.api.limits import BodyLimit
from zakaz_common.clickhouse import Warehouse, embedded_path, open_warehouse
from zakaz_common.control import announce, local_router, new_token
from zakaz_common.errors import ConfigError
from zakaz_common.jobs import QueueUnavailable, RunConflict, enqueue_run
from zakaz_common.localserver import free_port
from zakaz_common.locks import pid_alive
from zakaz_common.manifest import SourceManifest, manifests
from zakaz_common.migrate import migrate, pending
from zakaz_common.runs import RunRequest
from zakaz_common.scheduler import SchedulerLoop, is_enabled
from zakaz_common.service import create_app as create_source_app
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings
from zakaz_common.timeutil import to_msk
from zakaz_common.worker import SHUTDOWN_GRACE_SECONDS, WorkerThread

log = logging.getLogger(__name__)

#: The variable setting the scheduler's tick; a simulated day sets it low.
SCHEDULER_INTERVAL_VARIABLE = "ZAKAZ_SCHEDULER_INTERVAL_SECONDS"

#: Seconds between scheduler ticks in `zakaz up`: well under a minute, so a slot fires on time.
DEFAULT_SCHEDULER_INTERVAL_SECONDS = 2.0

#: Seconds between two looks at the run log for finished runs to print.
RUN_LOG_POLL_SECONDS = 1.0

#: Seconds the private redis-server gets to start answering.
REDIS_START_SECONDS = 15.0


@dataclass
class UpOptions:
    """What `zakaz up` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8080
    sandbox: bool = False


@dataclass
class _Parts:
    """Everything started, so that shutdown stops exactly what is running."""

    stops: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def add(self, name: str, stop: Callable[[], object]) -> None:
        self.stops.append((name, stop))

    def stop_all(self) -> None:
        for name, stop in reversed(self.stops):
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", name)
        self.stops.clear()


def serve_platform(options: UpOptions, out: Console) -> None:
    """Run the platform until SIGINT or SIGTERM (main thread only); raises ZakazError on start."""
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            out.print(
                f"zakaz up: got {signal.Signals(signum).name}, stopping…",
                highlight=False,
                soft_wrap=True,
            )
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    parts = _Parts()
    try:
        _start(options, out, parts, stopping)
    finally:
        parts.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.print("zakaz up: stopped", highlight=False, soft_wrap=True)


def _start(options: UpOptions, out: Console, parts: _Parts, stopping: threading.Event) -> None:
    core = load_settings(CoreSettings)
    if "REDIS_URL" not in os.environ:
        url, stop_redis = private_redis(core.data_dir / "redis")
        os.environ["REDIS_URL"] = url
        parts.add("redis-server", stop_redis)
        out.print(
            f"REDIS_URL is not set: started a private redis-server at {url} "
            f"(data in {core.data_dir / 'redis'})",
            highlight=False,
        )
    if options.sandbox:
        base_url = _start_sandbox(core.data_dir / "sandbox-secrets", parts)
        out.print(
            f"sandbox upstreams (no credentials needed) at {base_url}",
            highlight=False,
            soft_wrap=True,
        )
    core = load_settings(CoreSettings)
    wh = open_warehouse(load_settings(WarehouseSettings), core)
    if pending(wh):
        report = migrate(wh)
        if report.applied:
            out.print(f"applied {len(report.applied)} migrations", highlight=False, soft_wrap=True)
    installed = manifests()
    if not installed:
        raise ConfigError("no source is installed in this environment: run `make install`")

    app, probes = _app(wh, installed, core.redis_url)
    token = new_token()
    if wh.embedded:
        app.include_router(
            local_router(
                token=token, warehouse=wh, manifests=installed.values(), redis_url=core.redis_url
            )
        )
    conn = redis.Redis.from_url(core.redis_url, socket_connect_timeout=5, socket_timeout=10)
    buried = bury_dead_workers(conn)
    if buried:
        out.print(f"workers of a killed zakaz up cleared: {', '.join(buried)}", highlight=False)
    workers = {name: WorkerThread(m, core.redis_url) for name, m in installed.items()}
    for name, worker in workers.items():
        worker.start()
        probes[name].local_worker = worker.problem
    parts.add("workers", lambda: _stop_workers(list(workers.values())))
    _start_health_parts(app, wh, core.redis_url, parts)

    _start_scheduler(conn, wh, installed, core.tz, parts)
    api = _start_server(app, options, parts)
    local = "127.0.0.1" if options.host in {"0.0.0.0", "::", ""} else options.host  # noqa: S104
    base = f"http://{local}:{options.port}"
    if wh.embedded:
        _, withdraw = announce(embedded_path(wh.dsn), base, token)
        parts.add("control file", withdraw)
    _print_urls(out, base, wh, installed)
    first = _first_runs(conn, wh, installed, everything=options.sandbox)
    if first:
        out.print(f"first load queued: {', '.join(first)}", highlight=False, soft_wrap=True)
    _supervise(out, wh, api, workers, stopping, base)


def bury_dead_workers(conn: redis.Redis) -> list[str]:
    """Unregister the RQ workers of this machine whose process is gone; their names.

    A `zakaz up` killed with SIGKILL leaves its workers registered with a fresh heartbeat, so
    for `jobs.BUSY_HEARTBEAT_MAX_AGE_SECONDS` its last run would still look in progress and
    block that source's next runs. Once the workers are gone, the next trigger fails that run
    and is accepted (`jobs.job_in_progress`).
    """
    host = socket.gethostname()
    buried = []
    for worker in Worker.all(connection=conn):
        if worker.hostname != host or not worker.pid or worker.pid == os.getpid():
            continue
        if pid_alive(worker.pid):
            continue
        unregister(worker)
        conn.delete(worker.key)
        buried.append(worker.name)
    return buried


def _start_scheduler(
    conn: redis.Redis,
    wh: Warehouse,
    installed: Mapping[str, SourceManifest],
    tz: str,
    parts: _Parts,
) -> None:
    loop = SchedulerLoop(
        conn, wh=wh, manifests=installed, tz=tz, interval_seconds=_scheduler_interval()
    )
    thread = threading.Thread(target=loop.run, name="scheduler", daemon=True)
    thread.start()

    def stop() -> None:
        loop.stop()
        thread.join(15)

    parts.add("scheduler", stop)


def _start_server(app: FastAPI, options: UpOptions, parts: _Parts) -> threading.Thread:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_config=None,
            proxy_headers=True,
            timeout_graceful_shutdown=3,
        )
    )
    api = threading.Thread(target=server.run, name="api", daemon=True)
    api.start()

    def stop() -> None:
        server.should_exit = True
        api.join(5)

    parts.add("http server", stop)
    deadline = time.monotonic() + 15
    while not server.started:
        if not api.is_alive() or time.monotonic() > deadline:
            raise ConfigError(
                f"could not listen on {options.host}:{options.port}: is the port taken? use --port"
            )
        time.sleep(0.05)
    return api


def private_redis(directory: Path) -> tuple[str, Callable[[], None]]:
    """A redis-server persisted in `directory` on loopback; its URL and the function stopping it.

    One left running by a `zakaz up` that was killed (its pid and URL are in `redis.json`) is
    taken over rather than started twice over the same files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "redis.json"
    previous = _read_json(record)
    url = previous.get("url")
    if isinstance(url, str) and isinstance(previous.get("pid"), int) and redis_answers(url):
        log.warning("taking over the private redis-server left running at %s", url)
        return url, _stopper(url, None)
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(
            "REDIS_URL is not set and redis-server is not installed: install it "
            "(Debian/Ubuntu: sudo apt-get install redis-server) or set REDIS_URL"
        )
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--appendonly", "yes", "--save", "60 1", "--daemonize", "no"]
    args += ["--logfile", str(directory / "redis.log")]
    process = subprocess.Popen(  # noqa: S603 - our own argument list
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + REDIS_START_SECONDS
    while not redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise ConfigError(
                f"the private redis-server did not start (see {directory / 'redis.log'})"
            )
        time.sleep(0.05)
    record.write_text(json.dumps({"url": url, "pid": process.pid}))
    return url, _stopper(url, process)


def redis_answers(url: str) -> bool:
    """Whether a Redis at `url` answers a PING within a second or two."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _stopper(url: str, process: subprocess.Popen[bytes] | None) -> Callable[[], None]:
    def stop() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=10)
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        if process is None:
            return
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return stop


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _start_sandbox(secrets_dir: Path, parts: _Parts) -> str:
    try:
        from zakaz_sandbox.app import create_app
        from zakaz_sandbox.demo_env import source_settings
    except ImportError as exc:
        raise ConfigError("--sandbox needs the zakaz-sandbox package: run `make install`") from exc
    from zakaz_common.localserver import serving

    served = serving(create_app())
    base_url = served.__enter__()
    parts.add("sandbox", lambda: served.__exit__(None, None, None))
    for values in source_settings(base_url, secrets_dir).values():
        os.environ.update(values)
    return base_url


def _app(
    wh: Warehouse, installed: Mapping[str, SourceManifest], redis_url: str
) -> tuple[FastAPI, dict[str, Any]]:
    """The health app with every source's control API mounted under `/sources/<source>`."""
    try:
        from zakaz_health.app import create_app as create_health_app
    except ImportError as exc:
        raise ConfigError("zakaz up needs the health service package: run `make install`") from exc
    app = create_health_app(redis_url=redis_url, warehouse=wh, manifests=installed.values())
    app.add_middleware(BodyLimit)
    runtimes = {}
    for name, manifest in installed.items():
        sub = create_source_app(manifest, redis_url=redis_url, warehouse=wh)
        app.mount(f"/sources/{name}", sub)
        runtimes[name] = sub.state.runtime
    return app, runtimes


def _start_health_parts(app: FastAPI, wh: Warehouse, redis_url: str, parts: _Parts) -> None:
    from zakaz_health.serve import AlertWorker
    from zakaz_health.sweep import Sweeper

    worker = AlertWorker(redis_url)
    app.state.health.local_worker = worker.problem
    worker.start()
    parts.add("alert worker", worker.stop)
    sweeper = Sweeper(wh, redis_url)
    sweeper.start()
    parts.add("sweeper", sweeper.stop)


def _stop_workers(workers: list[WorkerThread]) -> None:
    """Stop every worker at once: each running job gets the same grace period, not one after another."""
    threads = [
        threading.Thread(target=w.stop, args=(SHUTDOWN_GRACE_SECONDS,), daemon=True)
        for w in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SHUTDOWN_GRACE_SECONDS + 10)


def _scheduler_interval() -> float:
    raw = os.environ.get(SCHEDULER_INTERVAL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_SCHEDULER_INTERVAL_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 60:
        raise ConfigError(f"{SCHEDULER_INTERVAL_VARIABLE}={raw!r}: use seconds from 0.05 to 60")
    return value


def _first_runs(
    conn: redis.Redis, wh: Warehouse, installed: Mapping[str, SourceManifest], *, everything: bool
) -> list[str]:
    """Queue a first load of every enabled source that never succeeded (every source with --sandbox)."""
    loaded = {
        str(job)
        for (job,) in wh.rows("SELECT DISTINCT job FROM meta_job_runs WHERE status = 'success'")
    }
    queued = []
    for name, manifest in installed.items():
        if name in loaded and not everything:
            continue
        if not everything and not is_enabled(conn, name, manifest):
            continue
        try:
            enqueue_run(conn, manifest, RunRequest(), wh=wh, trigger="up")
        except RunConflict:
            continue  # one is already waiting from before a restart
        except QueueUnavailable as exc:
            log.warning("the first load of %s could not be queued: %s", name, exc)
            continue
        queued.append(name)
    return queued


def _print_urls(
    out: Console, base: str, wh: Warehouse, installed: Mapping[str, SourceManifest]
) -> None:
    lines = [
        f"zakaz up: ready, warehouse {wh.display}",
        f"  status page   {base}/",
        f"  health JSON   {base}/healthz/detailed",
        f"  metrics       {base}/metrics",
        f"  source APIs   {base}/sources/<source>/  ({', '.join(installed)})",
        '  another shell: zakaz status | check | run SOURCE | sql "SELECT ..."',
        "  Ctrl-C here stops everything",
    ]
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)


def _supervise(
    out: Console,
    wh: Warehouse,
    api: threading.Thread,
    workers: Mapping[str, WorkerThread],
    stopping: threading.Event,
    base: str,
) -> None:
    runs = RunLog(wh, since=clock.now() - 5)
    reported: set[str] = set()
    while not stopping.wait(RUN_LOG_POLL_SECONDS):
        if not api.is_alive():
            raise ConfigError(f"the HTTP server at {base} stopped; see the log above")
        for name, worker in workers.items():
            problem = worker.problem()
            if problem and name not in reported:
                out.print(f"[red]{name}: {problem}[/red]", highlight=False, soft_wrap=True)
                reported.add(name)
        for line in runs.new_lines():
            out.print(line, highlight=False, soft_wrap=True)


class RunLog:
    """Finished runs not printed yet, as one line each."""

    def __init__(self, wh: Warehouse, *, since: float) -> None:
        self._wh = wh
        self._since = int(since)
        self._seen: set[str] = set()

    def new_lines(self) -> Iterator[str]:
        """A line per run finished since the last call."""
        try:
            found = self._wh.dicts(
                "SELECT run_id, job, status, finished_at, rows_processed, rows_rejected, "
                "message, metrics, trigger FROM meta_job_runs "
                "WHERE finished_at >= toDateTime({since:UInt32}) "
                "AND status NOT IN ('queued', 'running') ORDER BY finished_at",
                {"since": self._since},
            )
        except Exception as exc:  # the warehouse busy or away: try again next poll
            log.debug("run log not readable now: %s", exc)
            return
        for row in found:
            if row["run_id"] in self._seen:
                continue
            self._seen.add(row["run_id"])
            yield _line(row)


def _line(row: Mapping[str, Any]) -> str:
    try:
        seconds = json.loads(row["metrics"] or "{}").get("duration_ms", 0) / 1000
    except (ValueError, AttributeError):
        seconds = 0.0
    colour = {"success": "green", "error": "red", "dry_run": "blue"}.get(row["status"], "white")
    when = to_msk(row["finished_at"]).strftime("%H:%M:%S") if row["finished_at"] else "--:--:--"
    text = (
        f"{when}  {row['job']:<16} [{colour}]{row['status']:<7}[/{colour}] "
        f"{int(row['rows_processed'] or 0):>7} rows, {int(row['rows_rejected'] or 0)} rejected, "
        f"{seconds:.1f} s ({row['trigger'] or 'run'})"
    )
    if row["status"] == "error" and row["message"]:
        text += f" — {str(row['message'])[:160]}"
    return text
