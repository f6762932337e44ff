"""The processes of a simulated day: the sandbox, a redis-server and `zakaz up`, each its own.

Each runs as a subprocess in its own session so that one can be killed (SIGKILL) or restarted
while the others keep their state: the sandbox keeps the upstreams' data and faults, Redis its
queues, and the warehouse directory survives the `zakaz up` that owned it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from zakaz_common import clock
from zakaz_common.localserver import free_port
from zakaz_common.up import redis_answers
from zakaz_sandbox.demo_env import source_settings

#: Seconds a process gets to start answering.
START_SECONDS = 60.0

#: Seconds `zakaz up` gets to stop on SIGTERM (a running job's grace period included).
STOP_SECONDS = 60.0

#: Scheduler tick of the simulated `zakaz up`: a slot fires within a fraction of a second.
SCHEDULER_TICK_SECONDS = "0.2"

#: Retry waits of a transiently failed run: seconds, not the production minutes.
RETRY_WAITS_SECONDS = "1,2,4"

#: Lock TTL: a killed run frees its source within seconds.
LOCK_TTL_SECONDS = "5"


def _wait(what: str, ready: Any, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {START_SECONDS:.0f} s; see {log}")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _zakaz() -> list[str]:
    """The zakaz command of this environment."""
    found = Path(sys.executable).with_name("zakaz")
    return [str(found)] if found.exists() else [sys.executable, "-m", "zakaz_common"]


@dataclass
class Stack:
    """The three processes of one simulated day, under `root`."""

    root: Path
    clock_file: Path = field(init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    sandbox_url: str = ""
    redis_port: int = 0
    up_port: int = 0
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock_file = self.root / "clock"
        self.http = httpx.Client(timeout=30)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Path:
        log = self.root / f"{name}.log"
        handle = log.open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own argument list
            args,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        handle.close()
        return log

    # -- the sandbox ---------------------------------------------------------------------------

    def start_sandbox(self) -> None:
        port = free_port()
        log = self._spawn(
            "sandbox", [*_zakaz(), "serve", "sandbox", "--host", "127.0.0.1", "--port", str(port)]
        )
        self.sandbox_url = f"http://127.0.0.1:{port}"
        _wait(
            "the sandbox",
            lambda: _answers(self.sandbox_url + "/healthz"),
            self.processes["sandbox"],
            log,
        )
        for values in source_settings(self.sandbox_url, self.root / "secrets").values():
            self.settings.update(values)

    def control(self, path: str, body: Any = None, method: str = "POST") -> Any:
        """Call a sandbox control under `/_sandbox/`; its JSON."""
        answer = self.http.request(
            method, f"{self.sandbox_url}/_sandbox/{path}", json=body if method != "GET" else None
        )
        answer.raise_for_status()
        return answer.json()

    # -- redis-server --------------------------------------------------------------------------

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (sudo apt-get install redis-server)")
        if not self.redis_port:
            self.redis_port = free_port()
        directory = self.root / "redis"
        directory.mkdir(exist_ok=True)
        args = [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        args += ["--dir", str(directory), "--appendonly", "yes", "--save", "", "--daemonize", "no"]
        log = self._spawn("redis", args)
        _wait("redis-server", lambda: redis_answers(self.redis_url), self.processes["redis"], log)

    def restart_redis(self) -> None:
        """Stop redis-server (SIGTERM: it writes its append-only file) and start it again."""
        self._stop("redis", signal.SIGTERM)
        self.start_redis()

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=5, socket_timeout=10)

    # -- zakaz up ------------------------------------------------------------------------------

    def platform_env(self, data_dir: Path, clock_file: Path) -> dict[str, str]:
        """The environment of a `zakaz` process on `data_dir` pointed at the sandbox."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZAKAZ_", "REDIS_URL"))}
        env.update(self.settings)
        env.update(
            {
                "ZAKAZ_DATA_DIR": str(data_dir),
                "REDIS_URL": self.redis_url,
                "ZAKAZ_VIRTUAL_CLOCK_FILE": str(clock_file),
                "ZAKAZ_SCHEDULER_INTERVAL_SECONDS": SCHEDULER_TICK_SECONDS,
                "ZAKAZ_RETRY_INTERVALS_SECONDS": RETRY_WAITS_SECONDS,
                "ZAKAZ_LOCK_TTL_SECONDS": LOCK_TTL_SECONDS,
                "ZAKAZ_LOG_LEVEL": "INFO",
            }
        )
        return env

    def start_up(self) -> None:
        if not self.up_port:
            self.up_port = free_port()
        env = self.platform_env(self.data_dir, self.clock_file)
        log = self._spawn(
            "up", [*_zakaz(), "up", "--host", "127.0.0.1", "--port", str(self.up_port)], env
        )
        _wait("zakaz up", self._up_ready, self.processes["up"], log)

    def _up_ready(self) -> bool:
        try:
            self.local("GET", "/local/ping")
        except (OSError, ValueError, httpx.HTTPError, KeyError):
            return False
        return True

    def _token(self) -> str:
        found = json.loads((self.data_dir / "warehouse" / "control.json").read_text())
        if found.get("pid") != self.processes["up"].pid:
            raise KeyError("control file of another process")
        return str(found["token"])

    def local(self, method: str, path: str, body: Any = None) -> Any:
        """Call a `/local/…` route of the running `zakaz up`."""
        answer = self.http.request(
            method,
            f"http://127.0.0.1:{self.up_port}{path}",
            json=body,
            headers={"X-Zakaz-Control": self._token()},
        )
        answer.raise_for_status()
        return answer.json()

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Rows of a read-only query, through the running `zakaz up`."""
        found = self.local("POST", "/local/sql", {"query": query})
        return [dict(zip(found["columns"], row, strict=True)) for row in found["rows"]]

    def get(self, path: str) -> Any:
        """GET a public route of the running `zakaz up` (the health service's)."""
        answer = self.http.get(f"http://127.0.0.1:{self.up_port}{path}")
        answer.raise_for_status()
        return answer.json()

    def kill_up(self) -> None:
        """SIGKILL `zakaz up`: no shutdown, no cleanup, as a lost machine."""
        self._stop("up", signal.SIGKILL)

    def stop_up(self) -> None:
        self._stop("up", signal.SIGTERM)

    def _stop(self, name: str, sig: signal.Signals) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        for name in ("up", "sandbox", "redis"):
            self._stop(name, signal.SIGTERM)
        self.http.close()

    # -- the clock -----------------------------------------------------------------------------

    def set_virtual(self, moment: float) -> None:
        """Move the virtual clock so that its now is `moment` (a Unix timestamp)."""
        clock.set_offset(self.clock_file, moment - time.time())

    def virtual_date(self) -> str:
        """Today by the virtual clock, Moscow time, as ISO text."""
        from datetime import datetime
        from zoneinfo import ZoneInfo

        return (
            datetime.fromtimestamp(self.virtual_now(), ZoneInfo("Europe/Moscow")).date().isoformat()
        )

    def sandbox_orders(self) -> list[dict[str, Any]]:
        """The QTickets sandbox's orders, as its API serves them."""
        answer = self.http.request(
            "GET",
            self.settings["QTICKETS_BASE_URL"] + "/orders",
            json={"perPage": 1000},
            headers={"Authorization": f"Bearer {self.settings['QTICKETS_TOKEN']}"},
        )
        answer.raise_for_status()
        return list(answer.json()["data"])

    def virtual_now(self) -> float:
        try:
            offset = float(self.clock_file.read_text().strip() or 0)
        except FileNotFoundError:
            offset = 0.0
        return time.time() + offset
