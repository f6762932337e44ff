"""`zakaz run` and `zakaz backfill` killed or interrupted mid-load, and `zakaz serve` killed.

Each command runs in a real subprocess with its own `ZAKAZ_DATA_DIR` (an embedded warehouse
belongs to one process), the sample source registered by a launcher as an installed source
would be, and a real Redis. The lock TTL is 3 s (`ZAKAZ_LOCK_TTL_SECONDS`) to keep them quick.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from test_worker import TOKEN, Service, wait_for
from zakaz_common.locks import LOCK_TTL_ENV, lock_key
from zakaz_common.runs import ABANDONED_MESSAGE

TESTS = Path(__file__).parent
TTL = "3"

CLI = """
import sys

import sample_source
from zakaz_common.cli import main
from zakaz_common.manifest import register

register(sample_source.MANIFEST)
sys.argv[0] = "zakaz"
main()
"""

RUNS = """
import json
import sys

from zakaz_common.clickhouse import open_warehouse
from zakaz_common.runs import latest_runs
from zakaz_common.settings import CoreSettings, WarehouseSettings

wh = open_warehouse(WarehouseSettings(), CoreSettings())
print(json.dumps(latest_runs(wh, "sample", limit=50), default=str))
"""


class Zakaz:
    """The `zakaz` command with the sample source, in one data directory."""

    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        self.dir = tmp_path
        (tmp_path / "cli.py").write_text(CLI)
        self.started = tmp_path / "started"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CH_", "SAMPLE_"))}
        self.env.update(
            ZAKAZ_DATA_DIR=str(tmp_path / "data"),
            REDIS_URL=redis_url,
            PYTHONPATH=str(TESTS),
            SAMPLE_ROWS=json.dumps([["2025-06-01", 1, 2, "100"], ["2025-06-03", 2, 1, "10"]]),
            **{LOCK_TTL_ENV: TTL},
        )

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """`zakaz ARGS…` in the background."""
        self.started.unlink(missing_ok=True)
        return subprocess.Popen(
            [sys.executable, str(self.dir / "cli.py"), *args],
            env={**self.env, "SAMPLE_STARTED": str(self.started), **env},
            cwd=self.dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a signal to the test's group does not reach it
        )

    def loading(self, proc: subprocess.Popen[str]) -> None:
        """Wait until the command's run is inside the source's load."""
        wait_for(lambda: self.started.exists() or proc.poll() is not None, "the load starts", 90)
        assert proc.poll() is None, proc.communicate()

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`zakaz ARGS…` to the end."""
        return subprocess.run(  # noqa: PLW1510 - the exit code is what tests look at
            [sys.executable, str(self.dir / "cli.py"), *args],
            env={**self.env, **env},
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def runs(self) -> list[dict[str, Any]]:
        """The sample source's runs in this data directory, newest first."""
        done = subprocess.run(
            [sys.executable, "-c", RUNS],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found


@pytest.fixture
def zakaz(tmp_path: Path, redis_url: str) -> Iterator[Zakaz]:
    """The command, in this test's data directory."""
    yield Zakaz(tmp_path, redis_url)


def test_a_run_killed_mid_load_frees_the_source_and_the_next_run_closes_it(
    zakaz: Zakaz, redis_url: str
) -> None:
    proc = zakaz.start("run", "sample", SAMPLE_SLEEP="300")
    zakaz.loading(proc)
    proc.kill()
    proc.wait(10)
    killed = time.monotonic()

    while True:
        done = zakaz.run("run", "sample")
        if done.returncode == 0:
            break
        assert "already in progress" in done.stderr + done.stdout, done.stderr
        assert time.monotonic() - killed < 120, "the dead run held the source for 2 minutes"
        time.sleep(0.5)

    summary = json.loads(done.stdout)
    assert summary["status"] == "success"
    runs = {r["run_id"]: r for r in zakaz.runs()}
    dead = [r for r in runs.values() if r["run_id"] != summary["run_id"]]
    assert [(r["status"], r["message"]) for r in dead] == [("error", ABANDONED_MESSAGE)]
    assert not redis.Redis.from_url(redis_url).exists(lock_key("sample"))


@pytest.mark.parametrize(
    ("signals", "code", "name"),
    [
        ([signal.SIGTERM], 143, "SIGTERM"),
        ([signal.SIGINT], 130, "SIGINT"),
        ([signal.SIGINT, signal.SIGINT], 130, "SIGINT"),
    ],
    ids=["sigterm", "sigint", "sigint_twice"],
)
def test_a_stopped_run_is_recorded_as_interrupted_and_lets_go_of_its_lock(
    zakaz: Zakaz, redis_url: str, signals: list[signal.Signals], code: int, name: str
) -> None:
    proc = zakaz.start("run", "sample", SAMPLE_SLEEP="300")
    zakaz.loading(proc)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == code, err
    summary = json.loads(out)
    assert summary["status"] == "error"
    assert summary["message"] == f"interrupted by {name}"
    assert not redis.Redis.from_url(redis_url).exists(lock_key("sample"))
    assert [(r["status"], r["message"]) for r in zakaz.runs()] == [
        ("error", f"interrupted by {name}")
    ]


def test_an_interrupted_backfill_says_how_to_resume_and_resumes(
    zakaz: Zakaz, redis_url: str
) -> None:
    # Chunks of two days: 06-01…06-02 (done before) and 06-03…06-04 (interrupted).
    args = ("backfill", "sample", "--since", "2025-06-01", "--to", "2025-06-04")
    first = zakaz.run("backfill", "sample", "--since", "2025-06-01", "--to", "2025-06-02")
    assert first.returncode == 0, first.stderr

    proc = zakaz.start(*args, SAMPLE_SLEEP="300")
    zakaz.loading(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    assert "run the same command again" in err
    assert " ".join(args) in err
    assert not redis.Redis.from_url(redis_url).exists(lock_key("sample"))
    runs = zakaz.runs()
    assert not [r for r in runs if r["status"] in {"running", "queued"}]
    assert [r["message"] for r in runs if r["status"] == "error"] == ["interrupted by SIGINT"]

    again = zakaz.run(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"source": "sample", "chunks": 2, "failed": 0, "skipped": 1}


@pytest.fixture
def sample_services(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Service]]:
    """Start `zakaz serve sample` processes (one data directory); each is killed at the end."""
    started: list[Service] = []

    def start(**env: str) -> Service:
        service = Service(tmp_path, redis_url, 6.0, **{LOCK_TTL_ENV: TTL, **env})
        started.append(service)
        return service

    yield start
    for service in started:
        service.close()


def test_a_service_killed_mid_run_accepts_the_next_run_which_closes_the_dead_one(
    sample_services: Callable[..., Service],
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = sample_services(SAMPLE_SLEEP="300")
    first.wait_healthy()
    dead_id = first.http.post("/runs", headers=auth).json()["run_id"]
    wait_for(lambda: first.run_status(dead_id)["status"] == "running", "the run starts")
    first.proc.kill()
    first.proc.wait(10)

    second = sample_services()
    second.wait_healthy()
    answers = []
    deadline = time.monotonic() + 120
    while not answers or answers[-1] == 409:
        assert time.monotonic() < deadline, answers
        answer = second.http.post("/runs", headers=auth)
        answers.append(answer.status_code)
        time.sleep(0.5)
    assert answers[-1] == 202, answers
    run_id = answer.json()["run_id"]
    wait_for(lambda: second.run_status(run_id)["status"] == "success", "the new run succeeds", 60)

    dead = second.run_status(dead_id)
    assert (dead["status"], dead["message"]) == ("error", ABANDONED_MESSAGE)
    code, _ = second.terminate(timeout=15)
    assert code == 0, second.output()
