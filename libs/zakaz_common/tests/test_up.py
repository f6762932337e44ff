"""`zakaz up --sandbox` as a newcomer starts it: a real subprocess on a fresh data directory,
its own private redis-server, the bundled sandbox; then `zakaz status`, `zakaz sql` and
`zakaz run` from other processes, the status page in headless Chromium, and SIGTERM.

The platform's process owns the embedded warehouse, so every read goes through it
(`zakaz sql`, `zakaz status`) while it runs, and through a fresh `zakaz sql` after it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import redis
from zakaz_common.localserver import free_port
from zakaz_common.manifest import CONTRACT_SOURCES

#: The issue's bound: every source has loaded once within a minute of the start.
FIRST_LOADS_SECONDS: Final = 60.0

#: Seconds a stopped platform gets to record itself and exit.
STOP_SECONDS: Final = 60.0


@dataclass
class Platform:
    """A running `zakaz up --sandbox` and what it was started with."""

    proc: subprocess.Popen[str]
    data_dir: Path
    base_url: str
    env: dict[str, str]
    log: Path

    def zakaz(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`zakaz ARGS` as another terminal runs it, on the same data directory."""
        return subprocess.run(  # noqa: PLW1510 - the exit code is what the tests look at
            [sys.executable, "-m", "zakaz_common", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def sql(self, query: str) -> list[dict[str, Any]]:
        done = self.zakaz("sql", query, "--json")
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _environment(data_dir: Path) -> dict[str, str]:
    """The developer's environment without any zakaz, ClickHouse, Redis or upstream setting."""
    prefixes = ("CH_", "ZAKAZ_", "QTICKETS_", "VK_", "DIRECT_", "GMAIL_", "SHEET", "SMTP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.pop("REDIS_URL", None)
    env.update(ZAKAZ_DATA_DIR=str(data_dir), COLUMNS="80")
    return env


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; `make test` installs it", pytrace=False)
    workdir = tmp_path_factory.mktemp("up")
    port = free_port()
    env = _environment(workdir / "data")
    log = workdir / "up.log"
    with log.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zakaz_common", "up", "--sandbox", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    up = Platform(proc, workdir / "data", f"http://127.0.0.1:{port}", env, log)
    try:
        yield up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _stop_private_redis(up.data_dir)


def _stop_private_redis(data_dir: Path) -> None:
    """A private redis-server a failed test left behind is shut down."""
    record = data_dir / "redis" / "redis.json"
    if record.exists():
        url = json.loads(record.read_text())["url"]
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(url, socket_connect_timeout=1).shutdown(nosave=True)


def test_every_source_loads_within_a_minute_of_the_start(platform: Platform) -> None:
    started = time.monotonic()
    control = platform.data_dir / "warehouse" / "control.json"
    while not control.exists():
        assert platform.proc.poll() is None, platform.output()
        assert time.monotonic() - started < FIRST_LOADS_SECONDS, platform.output()
        time.sleep(0.2)
    loaded: set[str] = set()
    while loaded != set(CONTRACT_SOURCES):
        assert time.monotonic() - started < FIRST_LOADS_SECONDS, (loaded, platform.output())
        rows = platform.sql("SELECT DISTINCT job FROM meta_job_runs FINAL WHERE status = 'success'")
        loaded = {row["job"] for row in rows}
        time.sleep(1)

    out = platform.output()
    assert "started a private redis-server" in out
    assert f"status page   {platform.base_url}/" in out
    for source in CONTRACT_SOURCES:
        assert re.search(rf"^\d\d:\d\d:\d\d  {source} +success +\d+ rows", out, re.M), out
    # RQ's own INFO lines stay out of the platform's output.
    assert "Job OK" not in out and "Listening on" not in out, out


def test_status_sql_and_run_work_from_another_process(platform: Platform) -> None:
    status = platform.zakaz("status", "--json")
    assert status.returncode == 0, status.stderr
    by_source = {s["source"]: s for s in json.loads(status.stdout)}
    assert set(by_source) == set(CONTRACT_SOURCES)
    assert all(s["last_status"] == "success" for s in by_source.values()), by_source

    table = platform.zakaz("sql", "SELECT count() AS shows FROM v_romi_kpi")
    assert table.returncode == 0, table.stderr
    assert "shows" in table.stdout
    shows = platform.sql("SELECT count() AS n FROM v_romi_kpi")[0]["n"]
    assert int(shows) > 0

    refused = platform.zakaz("sql", "DROP TABLE meta_job_runs")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error:") and "only reads" in refused.stderr
    sneaked = platform.zakaz("sql", "SELECT 1; DROP TABLE meta_job_runs")
    assert sneaked.returncode == 1, sneaked.stdout
    assert platform.sql("SELECT count() AS n FROM meta_job_runs")[0]["n"] != 0

    before = platform.sql("SELECT count() AS n FROM meta_job_runs WHERE job = 'vk_ads'")[0]["n"]
    run = platform.zakaz("run", "vk_ads")
    assert run.returncode == 0, run.stderr
    assert "queued on zakaz up" in run.stderr
    summary = json.loads(run.stdout)
    assert summary["source"] == "vk_ads" and summary["status"] == "success"
    assert summary["rows_processed"] > 0
    after = platform.sql("SELECT count() AS n FROM meta_job_runs WHERE job = 'vk_ads'")[0]["n"]
    assert int(after) == int(before) + 1

    unknown = platform.zakaz("run", "no_such_source")
    assert unknown.returncode != 0 and "no_such_source" in unknown.stderr


def test_the_local_routes_refuse_a_caller_without_the_token(platform: Platform) -> None:
    unsigned = httpx.get(platform.base_url + "/local/status", timeout=10)
    assert unsigned.status_code == 403, unsigned.text
    unsigned = httpx.post(platform.base_url + "/local/sql", json={"query": "SELECT 1"}, timeout=10)
    assert unsigned.status_code == 403, unsigned.text
    wrong = httpx.post(
        platform.base_url + "/local/sql",
        json={"query": "SELECT 1"},
        headers={"X-Zakaz-Control": "not-the-token"},
        timeout=10,
    )
    assert wrong.status_code == 403
    # Each source's control API is mounted with the containers' token rules (CONTRACT §3).
    source = platform.base_url + "/sources/vk_ads"
    assert httpx.post(source + "/runs", json={}, timeout=10).status_code in (401, 403)
    assert httpx.get(source + "/healthz", timeout=10).status_code == 200
    latest = httpx.get(source + "/runs", params={"limit": 1}, timeout=10)
    assert latest.status_code == 200, latest.text
    token = json.loads((platform.data_dir / "warehouse" / "control.json").read_text())["token"]
    assert token not in platform.output()


def test_the_status_page_has_no_red_or_amber_card(platform: Platform, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed; `make test` installs it", pytrace=False)
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            platform.base_url + "/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cards = dict(
        (source, colour)
        for colour, source in re.findall(
            r'<section class="card (\w+)" data-source="(\w+)"', done.stdout
        )
    )
    assert set(cards) == set(CONTRACT_SOURCES), done.stdout[:2000]
    assert set(cards.values()) <= {"green", "grey"}, cards


def test_sigterm_stops_it_with_no_lock_no_running_row_no_control_file(
    platform: Platform,
) -> None:
    platform.proc.send_signal(signal.SIGTERM)
    assert platform.proc.wait(STOP_SECONDS) == 0, platform.output()
    out = platform.output()
    assert "got SIGTERM, stopping" in out and out.rstrip().endswith("zakaz up: stopped"), out
    assert not (platform.data_dir / "warehouse" / "control.json").exists()

    # The warehouse is free again: a plain `zakaz sql` opens it itself.
    running = platform.sql("SELECT count() AS n FROM meta_job_runs FINAL WHERE status = 'running'")
    assert int(running[0]["n"]) == 0

    # The private Redis kept its data on disk: started again there, it holds no lock.
    redis_dir = platform.data_dir / "redis"
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--logfile",
            str(redis_dir / "check.log"),
        ],
    )
    try:
        conn = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
        for _ in range(100):
            try:
                conn.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        assert conn.dbsize() > 0, "the private redis kept nothing: not the one the platform used"
        assert list(conn.scan_iter("zakaz:lock:*")) == []
    finally:
        server.terminate()
        server.wait(10)
