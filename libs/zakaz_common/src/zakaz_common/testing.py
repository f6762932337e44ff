"""Pytest fixtures for zakaz and its sources (a pytest plugin: `pytest_plugins = ["zakaz_common.testing"]`).

- `wh`: a fresh, migrated database in the session's embedded warehouse (one chDB engine per
  process; each test gets its own database, so tests never see each other's rows).
- `redis_url`: a real `redis-server` on loopback, flushed per test. A missing `redis-server`
  fails the session with what to install: tests never skip for a missing server.
- `silent_server` (re-exported from `localserver`) and `warehouse_snapshot`, for tests of
  upstreams that hang: what the views show must not change when such a run fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.localserver import free_port, serving, silent_server

__all__ = [
    "RedisServer",
    "assert_stopped_at_deadline",
    "free_port",
    "serving",
    "silent_server",
    "warehouse_snapshot",
]
from zakaz_common.manifest import SourceManifest
from zakaz_common.migrate import migrate
from zakaz_common.runs import RunRequest, RunSummary, execute, get_run
from zakaz_common.settings import CoreSettings, WarehouseSettings


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point every setting at scratch places; nothing leaks in from the developer's shell."""
    data_dir = tmp_path_factory.mktemp("zakaz-data")
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(
            ("CH_", "ZAKAZ_", "QTICKETS_", "VK_", "DIRECT_", "GMAIL_", "SHEET", "SMTP_")
        ):
            del os.environ[name]
    os.environ["ZAKAZ_DATA_DIR"] = str(data_dir)
    # Nothing listens here: code that needs Redis in a test asks for the redis_url fixture.
    os.environ["REDIS_URL"] = "redis://127.0.0.1:9/0"
    yield data_dir
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def core() -> CoreSettings:
    """Core settings as the environment says now."""
    return CoreSettings()


@pytest.fixture
def wh() -> Iterator[Warehouse]:
    """A fresh, migrated database of its own in the session's embedded warehouse."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    warehouse = open_warehouse(WarehouseSettings(), CoreSettings(), database=name)
    migrate(warehouse)
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS `{name}`")


class RedisServer:
    """A `redis-server` process on loopback that a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed; `make test` installs it (apt-get install "
                "redis-server), or install it yourself",
                pytrace=False,
            )
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        """Stop the server (as a crash or a restart would)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's Redis, running and empty, set as REDIS_URL."""
    if redis_server.proc is None:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    return redis_server.url


#: Views that report on runs rather than data: a failed run rightly changes them.
RUN_VIEWS = frozenset({"v_data_freshness"})


def timed_run(
    manifest: SourceManifest, wh: Warehouse, request: RunRequest | None = None
) -> tuple[RunSummary, float]:
    """One recorded run of a source (`execute`, as `zakaz run`), and the seconds it took."""
    started = time.monotonic()
    summary = execute(manifest, request or RunRequest(), wh=wh, core=CoreSettings())
    return summary, time.monotonic() - started


def warehouse_snapshot(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    """Every BI view's rows (but `RUN_VIEWS`) and every fact's and dimension's stored rows,
    sorted: what readers see and what is stored, to compare around a run that must change
    nothing."""
    names = wh.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND (name LIKE 'v\\_%' OR name LIKE 'fact\\_%' OR name LIKE 'dim\\_%') ORDER BY name",
        {"db": wh.database},
    )
    return {
        name: sorted(wh.rows(f"SELECT * FROM `{name}`"), key=repr)
        for (name,) in names
        if name not in RUN_VIEWS
    }


#: Seconds a run stopped by its deadline may take beyond it: recording the run, the alert and
#: the mart refresh after the last request gave up.
DEADLINE_SLACK_SECONDS = 5.0


def assert_stopped_at_deadline(
    wh: Warehouse, summary: RunSummary, *, seconds: float, elapsed: float
) -> None:
    """The run failed cleanly at its deadline of `seconds`: recorded `error` with a message
    naming the deadline, alerted, and over within the deadline and a small slack."""
    from zakaz_common.alerts import open_alerts
    from zakaz_common.deadline import DeadlineExceeded

    recorded = get_run(wh, summary.run_id) or {}
    checks = (
        (summary.status == "error", f"status {summary.status!r} ({summary.message})"),
        (
            isinstance(summary.error, DeadlineExceeded),
            f"the error is {summary.error!r}, not DeadlineExceeded",
        ),
        (f"deadline of {seconds:g} s" in summary.message, f"message {summary.message!r}"),
        (recorded.get("status") == "error", f"recorded as {recorded.get('status')!r}"),
        (recorded.get("finished_at") is not None, "recorded without finished_at"),
        ("deadline" in str(recorded.get("message")), "the recorded message names no deadline"),
        (
            "run_failed" in {a.kind for a in open_alerts(wh, summary.source)},
            "no run_failed alert",
        ),
        (elapsed < seconds + DEADLINE_SLACK_SECONDS, f"took {elapsed:.1f} s"),
    )
    problems = [text for ok, text in checks if not ok]
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
