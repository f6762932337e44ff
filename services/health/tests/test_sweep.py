"""The sweep of abandoned runs: a dead process's `running` or `queued` row is closed, a live one kept."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from rq import Queue
from zakaz_common.clickhouse import Warehouse
from zakaz_common.locks import source_lock
from zakaz_common.runs import ABANDONED_MESSAGE, Status, get_run, record_run
from zakaz_health.sweep import Sweeper, sweep_abandoned

TTL = 60


def put(
    wh: Warehouse, run_id: str, source: str, status: Status, age: float, **metrics: object
) -> None:
    """A run row `age` seconds old."""
    record_run(
        wh,
        run_id=run_id,
        job=source,
        status=status,
        started_at=time.time() - age,
        metrics=metrics,
        trigger="api",
    )


def state(wh: Warehouse, run_id: str) -> tuple[str, str]:
    """A run's status and message."""
    run = get_run(wh, run_id)
    assert run is not None
    return run["status"], run["message"]


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        text=True,
    )
    return int(proc.stdout)


def test_dead_runs_are_closed_and_live_ones_kept(
    wh: Warehouse, redis_url: str, tmp_path: Path
) -> None:
    conn = redis.Redis.from_url(redis_url)
    here = {"host": socket.gethostname(), "pid": dead_pid()}
    put(wh, "held", "vk_ads", "running", 600, lock="redis")
    put(wh, "unheld", "direct", "running", 600, lock="redis")
    put(wh, "young", "gmail", "running", 10, lock="redis")
    put(wh, "other", "qtickets_api", "running", 600, lock="redis")
    put(wh, "file_dead", "qtickets_sheets", "running", 600, lock="file", holder=here)
    put(wh, "file_far", "sample", "running", 600, lock="file", holder={"host": "far", "pid": 1})
    put(wh, "queued_gone", "vk_ads", "queued", 600)
    Queue("direct", connection=conn).enqueue("time.sleep", 1, job_id="queued_live")
    put(wh, "queued_live", "direct", "queued", 600)

    with (
        source_lock("vk_ads", redis_url=redis_url, data_dir=tmp_path, run_id="held"),
        source_lock("qtickets_api", redis_url=redis_url, data_dir=tmp_path, run_id="newer"),
    ):
        closed = sweep_abandoned(wh, conn, ttl=TTL)

    assert sorted(closed) == ["file_dead", "other", "queued_gone", "unheld"]
    for run_id in closed:
        assert state(wh, run_id) == ("error", ABANDONED_MESSAGE)
    for run_id, status in [
        ("held", "running"),
        ("young", "running"),
        ("file_far", "running"),
        ("queued_live", "queued"),
    ]:
        assert state(wh, run_id)[0] == status
    assert json.loads(get_run(wh, "file_dead")["metrics"])["holder"] == here  # type: ignore[index]


def test_without_redis_only_what_can_be_told_without_it_is_closed(wh: Warehouse) -> None:
    put(wh, "unheld", "direct", "running", 600, lock="redis")
    put(wh, "queued", "direct", "queued", 600)
    here = {"host": socket.gethostname(), "pid": dead_pid()}
    put(wh, "file_dead", "gmail", "running", 600, lock="file", holder=here)

    assert sweep_abandoned(wh, None, ttl=TTL) == ["file_dead"]
    assert state(wh, "unheld")[0] == "running"


def test_the_health_services_sweeper_closes_a_dead_run_by_itself(
    wh: Warehouse, redis_url: str
) -> None:
    put(wh, "dead", "direct", "running", 600, lock="redis")
    sweeper = Sweeper(wh, redis_url, interval=0.2)
    sweeper.start()
    try:
        deadline = time.monotonic() + 20
        while state(wh, "dead")[0] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        sweeper.stop()
    assert state(wh, "dead") == ("error", ABANDONED_MESSAGE)
