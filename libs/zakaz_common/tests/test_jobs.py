"""The queue core: one pending run per source, retries of transient failures only, markers."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.jobs import (
    ENQUEUE_GRACE_SECONDS,
    RETRY_INTERVALS,
    QueueUnavailable,
    RunConflict,
    enqueue_run,
    pending_key,
    pending_run,
    queue_for,
)
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import RUN_FAILED, RunRequest, get_run, latest_runs
from zakaz_common.testing import RedisServer


@pytest.fixture
def conn(
    wh: Warehouse, redis_url: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> redis.Redis:
    """Redis for the test; jobs run by a worker write into the test's own database."""
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 2, "100"]]))
    return redis.Redis.from_url(redis_url)


def drain(conn: redis.Redis, source: str = "sample") -> None:
    """Work the queue until it is empty, in this process (RQ's SimpleWorker, burst mode)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([source], connection=conn).work(burst=True)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_queued_run_is_recorded_executed_and_releases_its_marker(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest
) -> None:
    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")

    run = get_run(wh, run_id)
    assert run is not None and (run["status"], run["trigger"]) == ("queued", "api")
    assert pending_run(conn, "sample") == run_id
    assert queue_for(conn, "sample").count == 1

    drain(conn)

    run = get_run(wh, run_id)
    assert run is not None and (run["status"], run["rows_processed"]) == ("success", 1)
    assert conn.get(pending_key("sample")) is None
    assert Job.fetch(run_id, connection=conn).get_status() == JobStatus.FINISHED


def test_a_second_trigger_while_one_is_queued_conflicts_and_leaves_nothing_behind(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest
) -> None:
    first = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")

    with pytest.raises(RunConflict) as caught:
        enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="schedule")

    assert caught.value.run_id == first
    assert queue_for(conn, "sample").get_job_ids() == [first]
    assert [r["run_id"] for r in latest_runs(wh, "sample")] == [first]
    assert len(conn.keys("rq:job:*")) == 1  # the refused trigger's job is gone


def test_concurrent_triggers_queue_exactly_one_run(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest
) -> None:
    queued: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(8)

    def trigger() -> None:
        start.wait()
        try:
            queued.append(enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api"))
        except RunConflict as exc:
            refused.append(exc.run_id)

    threads = [threading.Thread(target=trigger) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(queued) == 1 and len(refused) == 7
    assert set(refused) == set(queued)
    assert queue_for(conn, "sample").get_job_ids() == queued
    assert [r["run_id"] for r in latest_runs(wh, "sample")] == queued


def test_a_transient_failure_is_retried_by_rq_and_ends_as_error(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_FAIL", "transient")
    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
    queue = queue_for(conn, "sample")

    for attempt, interval in enumerate(RETRY_INTERVALS, start=1):
        before = datetime.now(UTC)
        drain(conn)
        job = Job.fetch(run_id, connection=conn)
        assert job.get_status() == JobStatus.SCHEDULED
        assert job.retries_left == len(RETRY_INTERVALS) - attempt
        due = queue.scheduled_job_registry.get_scheduled_time(job)
        assert before + timedelta(seconds=interval - 2) <= due
        assert due <= datetime.now(UTC) + timedelta(seconds=interval + 2)
        run = get_run(wh, run_id)
        assert run is not None and run["status"] == "queued"
        assert f"retry in {interval} s" in run["message"] and "503" in run["message"]
        with pytest.raises(RunConflict):  # the retry still holds the source's place
            enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
        queue.scheduled_job_registry.requeue(job)  # as RQ's scheduler does when it is due

    drain(conn)

    job = Job.fetch(run_id, connection=conn)
    assert job.get_status() == JobStatus.FINISHED and job.retries_left == 0
    run = get_run(wh, run_id)
    assert run is not None and run["status"] == "error" and "503" in run["message"]
    assert conn.get(pending_key("sample")) is None
    assert queue.failed_job_registry.count == 0
    assert [r["status"] for r in latest_runs(wh, "sample")] == ["error"]


def test_a_permanent_failure_is_not_retried(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_FAIL", "auth")
    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
    queue = queue_for(conn, "sample")

    drain(conn)

    job = Job.fetch(run_id, connection=conn)
    assert job.get_status() == JobStatus.FINISHED
    assert job.retries_left == len(RETRY_INTERVALS)  # no attempt was spent on a retry
    assert queue.scheduled_job_registry.count == 0 and queue.count == 0
    assert queue.failed_job_registry.count == 0
    run = get_run(wh, run_id)
    assert run is not None and run["status"] == "error" and "401" in run["message"]
    assert "abc123secret" not in run["message"]
    assert [a.kind for a in open_alerts(wh, "sample")] == [RUN_FAILED]
    assert conn.get(pending_key("sample")) is None


@pytest.mark.parametrize("left", ["missing_job", "finished_job"])
def test_a_stale_marker_does_not_block_a_new_trigger(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest, left: str
) -> None:
    if left == "finished_job":
        old = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
        drain(conn)
    else:
        old = "a-run-whose-job-is-gone"
    conn.set(pending_key("sample"), old)  # as a killed work horse would leave it

    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")

    assert run_id != old
    assert pending_run(conn, "sample") == run_id


def test_a_trigger_caught_half_way_blocks_only_for_the_grace(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest
) -> None:
    # A trigger that saved its job and took the marker but has not queued it yet.
    queue = Queue("sample", connection=conn)
    job = queue.create_job("zakaz_common.jobs.run_job", job_id="half", status=JobStatus.CREATED)
    job.save()
    conn.set(pending_key("sample"), "half")

    with pytest.raises(RunConflict):
        enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")

    # The same trigger, died: its job is older than the grace.
    job.created_at = datetime.now(UTC) - timedelta(seconds=ENQUEUE_GRACE_SECONDS + 1)
    job.save()
    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")

    assert pending_run(conn, "sample") == run_id
    assert not conn.exists(job.key)


def test_without_redis_nothing_is_queued_or_recorded(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest, redis_server: RedisServer
) -> None:
    redis_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match="Redis is not reachable"):
            enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
        assert time.monotonic() - started < 5
    finally:
        redis_server.start()
    assert latest_runs(wh, "sample") == []
