"""`serve`: the health service as its container runs it, in a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis
from rq import Queue
from rq.job import JobStatus
from zakaz_common.scheduler import ALERTS_JOB, ALERTS_QUEUE
from zakaz_common.testing import free_port
from zakaz_health.serve import QUEUE


def test_the_scheduler_queues_the_alert_job_where_the_health_worker_looks() -> None:
    assert (ALERTS_QUEUE, ALERTS_JOB) == (QUEUE, "zakaz_health.alerting.evaluate_alerts")


def test_serve_answers_works_the_alert_queue_and_stops_on_sigterm(
    redis_url: str, conn: redis.Redis, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_", "SMTP_"))}
    env.update(REDIS_URL=redis_url, ZAKAZ_DATA_DIR=str(tmp_path / "data"))
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from zakaz_health.serve import serve; serve('127.0.0.1', {port})"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        body = wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, tmp_path / "serve.log")
        assert body == {
            "status": "ok",
            "checks": {"warehouse": "ok", "redis": "ok", "worker": "ok"},
        }

        job = Queue(ALERTS_QUEUE, connection=conn).enqueue(ALERTS_JOB)
        deadline = time.monotonic() + 60
        while job.get_status(refresh=True) not in {JobStatus.FINISHED, JobStatus.FAILED}:
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)

        assert job.get_status() == JobStatus.FINISHED, (tmp_path / "serve.log").read_text()
        result = job.return_value()
        assert isinstance(result, dict) and result["errors"] == []

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> object:
    """Poll `/healthz` until it answers 200 (the process must stay up meanwhile)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            response = httpx.get(url, timeout=5)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            return response.json()
        time.sleep(0.2)
    raise AssertionError(f"health did not become healthy: {log.read_text()}")
