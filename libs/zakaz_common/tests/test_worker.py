"""The source's worker: in a thread beside the API (embedded warehouse), and `serve_source`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from rq import Retry, SimpleWorker, Worker
from rq.job import Job, JobStatus
from rq.timeouts import TimerDeathPenalty
from zakaz_common.clickhouse import Warehouse
from zakaz_common.jobs import RETRY_INTERVALS, enqueue_run, pending_run, queue_for
from zakaz_common.locks import lock_key
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import RunRequest, get_run
from zakaz_common.testing import RedisServer
from zakaz_common.worker import (
    HEARTBEAT_MAX_AGE_SECONDS,
    WORKER_TTL_SECONDS,
    WorkerThread,
    live_workers,
    make_worker,
)
from zakaz_common.worker_classes import ForkingWorker, ThreadWorker

TESTS = Path(__file__).parent
TOKEN = "worker-test-token"

LAUNCHER = """
import sys

import sample_source
from zakaz_common.manifest import register
from zakaz_common.worker import serve_source

register(sample_source.MANIFEST)
serve_source(
    sample_source.MANIFEST, host="127.0.0.1", port=int(sys.argv[1]), grace_seconds=float(sys.argv[2])
)
"""


@pytest.fixture
def conn(
    wh: Warehouse, redis_url: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> redis.Redis:
    """Redis for the test; jobs run by a worker write into the test's own database."""
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 2, "100"]]))
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def thread_worker(conn: redis.Redis, sample: SourceManifest) -> Iterator[ThreadWorker]:
    """The embedded warehouse's worker, with RQ's scheduler, working in a thread."""
    worker = make_worker(sample, conn, embedded=True)
    thread = threading.Thread(target=worker.work, kwargs={"with_scheduler": True}, daemon=True)
    thread.start()
    wait_for(lambda: bool(live_workers(conn, "sample")), "the worker registers")
    yield worker
    worker.stop()
    worker.abandon()
    thread.join(10)
    assert not thread.is_alive()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll until `condition` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


def status_of(wh: Warehouse, run_id: str) -> str | None:
    """A run's status in `meta_job_runs`."""
    run = get_run(wh, run_id)
    return run["status"] if run else None


def test_the_worker_follows_the_warehouse(conn: redis.Redis, sample: SourceManifest) -> None:
    embedded = make_worker(sample, conn, embedded=True)
    server = make_worker(sample, conn, embedded=False)

    assert isinstance(embedded, ThreadWorker) and isinstance(embedded, SimpleWorker)
    assert embedded.death_penalty_class is TimerDeathPenalty  # SIGALRM needs the main thread
    assert isinstance(server, ForkingWorker) and isinstance(server, Worker)
    assert not isinstance(server, SimpleWorker)
    for worker in (embedded, server):
        assert worker.queue_names() == ["sample"]
        assert worker.worker_ttl == WORKER_TTL_SECONDS
        assert worker.name.startswith("sample.")
    assert embedded.name != server.name


def test_the_thread_worker_runs_jobs_and_stops_within_a_second_or_two(
    conn: redis.Redis, wh: Warehouse, sample: SourceManifest
) -> None:
    worker = make_worker(sample, conn, embedded=True)
    thread = threading.Thread(target=worker.work, kwargs={"with_scheduler": True}, daemon=True)
    thread.start()
    wait_for(lambda: bool(live_workers(conn, "sample")), "the worker registers")

    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
    wait_for(lambda: status_of(wh, run_id) == "success", "the run succeeds")

    started = time.monotonic()
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 3
    assert live_workers(conn, "sample") == []


def test_the_thread_workers_scheduler_requeues_a_retry_when_it_is_due(
    conn: redis.Redis,
    wh: Warehouse,
    sample: SourceManifest,
    thread_worker: ThreadWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAMPLE_FAIL", "transient")
    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
    registry = queue_for(conn, "sample").scheduled_job_registry

    def retries_left() -> int | None:
        return Job.fetch(run_id, connection=conn).retries_left

    wait_for(lambda: retries_left() == len(RETRY_INTERVALS) - 1, "the first attempt fails")
    assert Job.fetch(run_id, connection=conn).get_status() == JobStatus.SCHEDULED
    registry.schedule(Job.fetch(run_id, connection=conn), datetime.now(UTC))  # its wait is over

    wait_for(lambda: retries_left() == len(RETRY_INTERVALS) - 2, "the retry runs")
    assert status_of(wh, run_id) == "queued"


def test_a_job_still_running_at_shutdown_is_abandoned_cleanly_and_requeued(
    conn: redis.Redis,
    wh: Warehouse,
    sample: SourceManifest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAMPLE_SLEEP", "60")
    worker = make_worker(sample, conn, embedded=True)
    thread = threading.Thread(target=worker.work, daemon=True)
    thread.start()
    run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
    wait_for(lambda: status_of(wh, run_id) == "running", "the run starts")

    worker.stop()
    thread.join(1.5)
    assert thread.is_alive()  # a stop lets the running job go on
    assert worker.abandon()
    thread.join(5)

    assert not thread.is_alive()
    run = get_run(wh, run_id)
    assert run is not None and run["status"] == "queued"
    assert "stopped during the run" in run["message"]
    job = Job.fetch(run_id, connection=conn)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == len(RETRY_INTERVALS) - 1
    assert not conn.exists(lock_key("sample"))
    assert pending_run(conn, "sample") == run_id  # nothing can overtake the re-queued run


@pytest.mark.parametrize("outage_after", [0.0, 1.5], ids=["at_start", "when_idle"])
def test_the_served_worker_outlives_a_redis_restart_and_is_seen_again(
    conn: redis.Redis,
    wh: Warehouse,
    sample: SourceManifest,
    redis_url: str,
    redis_server: RedisServer,
    outage_after: float,
) -> None:
    runner = WorkerThread(sample, redis_url)
    runner.start()
    try:
        wait_for(lambda: bool(live_workers(conn, "sample")), "the worker registers")
        time.sleep(outage_after)
        redis_server.stop()
        time.sleep(1.5)  # the worker meets the outage
        redis_server.start()  # with no data: Redis has forgotten the worker and its queue

        wait_for(lambda: bool(live_workers(conn, "sample")), "the worker is registered again")
        run_id = enqueue_run(conn, sample, RunRequest(), wh=wh, trigger="api")
        wait_for(lambda: status_of(wh, run_id) == "success", "a new run succeeds")
        assert runner.problem() is None
    finally:
        runner.stop(grace=5)
    assert runner.problem() == "the worker thread has stopped"
    assert live_workers(conn, "sample") == []


def test_only_workers_with_a_fresh_heartbeat_are_alive(
    conn: redis.Redis, thread_worker: ThreadWorker
) -> None:
    assert [w.name for w in live_workers(conn, "sample")] == [thread_worker.name]
    later = time.time() + HEARTBEAT_MAX_AGE_SECONDS + 5
    assert live_workers(conn, "sample", at=later) == []
    assert live_workers(conn, "other") == []


FORKING_WORKER = """
import sys

import redis
import sample_source
from zakaz_common.worker import make_worker

make_worker(sample_source.MANIFEST, redis.Redis.from_url(sys.argv[1]), embedded=False).work()
"""


def test_the_forking_worker_finishes_on_sigterm_and_abandons_its_job_on_a_second_one(
    redis_url: str, tmp_path: Path
) -> None:
    conn = redis.Redis.from_url(redis_url)
    job = queue_for(conn, "sample").enqueue("time.sleep", 60, job_id="slow", retry=Retry(max=1))
    script = tmp_path / "forking_worker.py"
    script.write_text(FORKING_WORKER)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen([sys.executable, str(script), redis_url], env=env)
    try:
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED, "the job starts")

        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert proc.poll() is None  # a warm stop waits for the job
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert code == 0
    job = Job.fetch("slow", connection=conn)
    assert job.get_status() == JobStatus.QUEUED  # RQ retries the abandoned job
    assert job.retries_left == 0
    assert live_workers(conn, "sample") == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`serve_source` of the sample source, run in a subprocess as a container would run it."""

    def __init__(self, tmp_path: Path, redis_url: str, grace: float, **env: str) -> None:
        launcher = tmp_path / "launch_sample.py"
        launcher.write_text(LAUNCHER)
        self.port = _free_port()
        self.log = tmp_path / f"service-{self.port}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("CH_", "SAMPLE_"))}
        environment.update(
            ZAKAZ_DATA_DIR=str(tmp_path / "data"),
            REDIS_URL=redis_url,
            ZAKAZ_API_TOKEN=TOKEN,
            PYTHONPATH=str(TESTS),
            SAMPLE_ROWS=json.dumps([["2025-06-01", 1, 2, "100"], ["2025-06-02", 2, 1, "10"]]),
            **env,
        )
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(launcher), str(self.port), str(grace)],
                env=environment,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def output(self) -> str:
        """What the service logged so far."""
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 90) -> None:
        """Wait until /healthz answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.output()
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.2)

    def run_status(self, run_id: str) -> dict[str, object]:
        """GET /runs/{run_id}."""
        answer = self.http.get(f"/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        data: dict[str, object] = answer.json()
        return data

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the service took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        """Make sure the process is gone."""
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def services(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Service]]:
    """Start sample services; each is killed at the end if still running."""
    started: list[Service] = []

    def start(grace: float = 6.0, **env: str) -> Service:
        service = Service(tmp_path, redis_url, grace, **env)
        started.append(service)
        return service

    yield start
    for service in started:
        service.close()


def test_serve_source_answers_runs_a_trigger_and_stops_on_sigterm(
    services: Callable[..., Service], redis_url: str
) -> None:
    service = services()
    service.wait_healthy()

    assert service.http.post("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 403
    answer = service.http.post(
        "/runs",
        json={"since": "2025-06-01", "to": "2025-06-30"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    wait_for(lambda: service.run_status(run_id)["status"] == "success", "the run succeeds")
    assert service.run_status(run_id)["rows_processed"] == 2

    code, took = service.terminate(timeout=15)

    assert code == 0, service.output()
    assert took < 5
    assert live_workers(redis.Redis.from_url(redis_url), "sample") == []
    assert TOKEN not in service.output()


def test_sigterm_during_a_run_abandons_it_cleanly_and_the_next_start_finishes_it(
    services: Callable[..., Service], redis_url: str
) -> None:
    first = services(grace=1.0, SAMPLE_SLEEP="120")
    first.wait_healthy()
    run_id = first.http.post("/runs", headers={"Authorization": f"Bearer {TOKEN}"}).json()["run_id"]
    wait_for(lambda: first.run_status(run_id)["status"] == "running", "the run starts")

    code, took = first.terminate(timeout=15)

    assert code == 0, first.output()
    assert took < 1.0 + 3.0 + 2.0
    conn = redis.Redis.from_url(redis_url)
    assert not conn.exists(lock_key("sample"))
    job = Job.fetch(run_id, connection=conn)
    assert job.get_status() == JobStatus.SCHEDULED

    second = services()
    second.wait_healthy()
    run = second.run_status(run_id)
    assert run["status"] == "queued" and "stopped during the run" in str(run["message"])
    conflict = second.http.post("/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert conflict.status_code == 409 and conflict.json()["run_id"] == run_id

    queue_for(conn, "sample").scheduled_job_registry.schedule(job, datetime.now(UTC))
    wait_for(lambda: second.run_status(run_id)["status"] == "success", "the re-queued run succeeds")
    code, _ = second.terminate(timeout=15)
    assert code == 0, second.output()
