"""Runs that lose their lock or cannot record their outcome: nothing races, nothing stays `running`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import redis
from test_worker import wait_for
from zakaz_common.clickhouse import Warehouse
from zakaz_common.locks import lock_key
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import ABANDONED_MESSAGE, RunRequest, RunSummary, execute, get_run
from zakaz_common.settings import CoreSettings
from zakaz_common.testing import RedisServer


def rows(*items: tuple[str, int, int, str]) -> str:
    """SAMPLE_ROWS for the sample source."""
    return json.dumps([list(item) for item in items])


def in_thread(
    manifest: SourceManifest, wh: Warehouse, core: CoreSettings
) -> tuple[threading.Thread, dict[str, RunSummary]]:
    """`execute` of one run in a thread; its summary lands in the dict under "run"."""
    result: dict[str, RunSummary] = {}

    def go() -> None:
        result["run"] = execute(manifest, RunRequest(), wh=wh, core=core)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, result


def test_a_run_whose_lock_went_with_a_redis_restart_stops_before_publishing(
    wh: Warehouse,
    sample: SourceManifest,
    redis_server: RedisServer,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = tmp_path / "started"
    monkeypatch.setenv("SAMPLE_STARTED", str(started))
    monkeypatch.setenv("SAMPLE_SLEEP", "6")
    core = CoreSettings()
    thread, first = in_thread(sample, wh, core)
    wait_for(started.exists, "the first run is loading")

    redis_server.stop()
    redis_server.start()
    monkeypatch.setenv("SAMPLE_SLEEP", "0")
    monkeypatch.delenv("SAMPLE_STARTED")
    monkeypatch.setenv("SAMPLE_ROWS", rows(("2025-06-01", 1, 2, "200")))
    second = execute(sample, RunRequest(), wh=wh, core=core)
    # What the first run would publish when it wakes, if it still thought it held the source.
    monkeypatch.setenv("SAMPLE_ROWS", rows(("2025-06-01", 1, 9, "900")))
    thread.join(30)

    assert second.status == "success", second.message
    lost = first["run"]
    assert lost.status == "error"
    assert "lock was lost" in lost.message
    run = get_run(wh, lost.run_id)
    assert run is not None and run["status"] == "error" and "lock was lost" in run["message"]
    assert wh.rows(
        "SELECT run_id, tickets_sold FROM fact_qtickets_sales_daily FINAL WHERE _deleted = 0"
    ) == [(second.run_id, 2)]
    assert (
        wh.scalar(
            "SELECT count() FROM fact_qtickets_sales_daily WHERE run_id = {r:String}",
            {"r": lost.run_id},
        )
        == 0
    )
    assert not redis.Redis.from_url(redis_url).exists(lock_key("sample"))


def test_an_outcome_that_cannot_be_recorded_still_frees_the_source_and_the_next_run_closes_it(
    wh: Warehouse,
    sample: SourceManifest,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = tmp_path / "started"
    monkeypatch.setenv("SAMPLE_STARTED", str(started))
    monkeypatch.setenv("SAMPLE_SLEEP", "1")
    monkeypatch.setenv("SAMPLE_ROWS", rows(("2025-06-01", 1, 2, "200")))
    core = CoreSettings()
    thread, first = in_thread(sample, wh, core)
    wait_for(started.exists, "the run is loading")
    # The run log becomes unwritable, as with a full disk, while the run loads.
    wh.command("RENAME TABLE meta_job_runs_log TO meta_job_runs_away")
    try:
        thread.join(30)
    finally:
        wh.command("RENAME TABLE meta_job_runs_away TO meta_job_runs_log")

    failed = first["run"]
    assert failed.status == "error"
    assert "could not be recorded" in failed.message
    assert not redis.Redis.from_url(redis_url).exists(lock_key("sample"))
    stuck = get_run(wh, failed.run_id)
    assert stuck is not None and stuck["status"] == "running"
    assert json.loads(stuck["metrics"])["holder"]["pid"] > 0  # the operator sees who ran it

    monkeypatch.delenv("SAMPLE_STARTED")
    monkeypatch.setenv("SAMPLE_SLEEP", "0")
    nxt = execute(sample, RunRequest(), wh=wh, core=core)

    assert nxt.status == "success", nxt.message
    closed = get_run(wh, failed.run_id)
    assert closed is not None
    assert (closed["status"], closed["message"]) == ("error", ABANDONED_MESSAGE)
    assert closed["finished_at"] is not None
