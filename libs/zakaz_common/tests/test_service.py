"""The control API of a source (CONTRACT §3), over HTTP with a real Redis and warehouse."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker
from zakaz_common.clickhouse import Warehouse
from zakaz_common.jobs import pending_key, queue_for
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import get_run, latest_runs, record_run
from zakaz_common.service import create_app
from zakaz_common.testing import RedisServer
from zakaz_common.worker import make_worker
from zakaz_common.worker_classes import ThreadWorker

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def conn(
    wh: Warehouse, redis_url: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> redis.Redis:
    """Redis for the test; jobs run by a worker write into the test's own database."""
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.setenv("ZAKAZ_API_TOKEN", TOKEN)
    monkeypatch.setenv(
        "SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 2, "100"], ["2025-06-02", 1, 1, "50"]])
    )
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def client(conn: redis.Redis, wh: Warehouse, redis_url: str, sample: SourceManifest) -> TestClient:
    """The sample source's control API."""
    return TestClient(create_app(sample, redis_url=redis_url, warehouse=wh))


@pytest.fixture
def live_worker(conn: redis.Redis, sample: SourceManifest) -> Iterator[ThreadWorker]:
    """The source's worker, working its queue in a thread as `serve_source` runs it."""
    worker = make_worker(sample, conn, embedded=True)
    thread = threading.Thread(target=worker.work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not conn.sismember("rq:workers:sample", worker.key) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield worker
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()


def drain(conn: redis.Redis) -> None:
    """Work the queue until it is empty, in this process (RQ's SimpleWorker, burst mode)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker(["sample"], connection=conn).work(burst=True)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None when it is absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if (
            line.startswith(name + "{")
            and ",".join(sorted(head[len(name) + 1 : -1].split(","))) == wanted
        ):
            return float(value)
    return None


def test_a_triggered_run_executes_and_shows_in_the_api_the_table_and_metrics(
    client: TestClient, conn: redis.Redis, wh: Warehouse
) -> None:
    answer = client.post("/runs", json={"since": "2025-06-01", "to": "2025-06-30"}, headers=AUTH)

    assert answer.status_code == 202
    run_id = answer.json()["run_id"]
    assert answer.json() == {"run_id": run_id, "status": "queued"}
    assert answer.headers["location"] == f"/runs/{run_id}"
    assert client.get(f"/runs/{run_id}").json()["status"] == "queued"

    drain(conn)

    run = client.get(f"/runs/{run_id}").json()
    assert set(run) == {
        "run_id",
        "source",
        "status",
        "started_at",
        "finished_at",
        "rows_processed",
        "message",
    }
    assert (run["run_id"], run["source"], run["status"], run["rows_processed"]) == (
        run_id,
        "sample",
        "success",
        2,
    )
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    assert run["started_at"].endswith("+03:00") and started <= finished
    assert abs(time.time() - finished.timestamp()) < 60
    row = get_run(wh, run_id)
    assert row is not None and (row["status"], row["trigger"]) == ("success", "api")
    assert [r["run_id"] for r in client.get("/runs").json()] == [run_id]

    text = client.get("/metrics").text
    assert metric(text, "zakaz_job_runs_total", source="sample", status="success") == 1
    assert metric(text, "zakaz_job_runs_total", source="sample", status="error") == 0
    assert metric(text, "zakaz_job_runs_total", source="sample", status="dry_run") == 0
    # The per-source state (last success, queue, worker) is the health service's to export.
    exported = {ln.split("{")[0] for ln in text.splitlines() if ln and not ln.startswith("#")}
    assert exported == {"zakaz_job_runs_total"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwdw=="}, 401),
        ({"Authorization": "Bearer wrong-token"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
    ],
    ids=["missing", "not_bearer", "wrong", "longer"],
)
def test_without_the_right_token_nothing_is_queued(
    client: TestClient, conn: redis.Redis, wh: Warehouse, headers: dict[str, str], code: int
) -> None:
    answer = client.post("/runs", json={"days": 1}, headers=headers)

    assert answer.status_code == code
    if code == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in answer.text
    assert queue_for(conn, "sample").count == 0
    assert conn.get(pending_key("sample")) is None
    assert latest_runs(wh, "sample") == []


@pytest.mark.parametrize(
    ("anonymous", "code"), [(None, 403), ("false", 403), ("true", 202)], ids=["unset", "no", "yes"]
)
def test_with_no_token_configured_triggers_are_refused_unless_anonymous_is_allowed(
    client: TestClient,
    conn: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    anonymous: str | None,
    code: int,
) -> None:
    monkeypatch.delenv("ZAKAZ_API_TOKEN")
    if anonymous is not None:
        monkeypatch.setenv("ZAKAZ_ALLOW_ANONYMOUS", anonymous)

    answer = client.post("/runs", headers=AUTH)

    assert answer.status_code == code
    assert queue_for(conn, "sample").count == (1 if code == 202 else 0)
    if code == 403:
        assert "ZAKAZ_API_TOKEN is not set" in answer.json()["detail"]


def test_a_second_trigger_while_one_is_queued_is_a_conflict(
    client: TestClient, conn: redis.Redis
) -> None:
    first = client.post("/runs", headers=AUTH).json()["run_id"]

    second = client.post("/runs", headers=AUTH)

    assert second.status_code == 409
    assert second.json()["run_id"] == first
    assert first in second.json()["detail"]
    assert queue_for(conn, "sample").get_job_ids() == [first]

    drain(conn)
    third = client.post("/runs", headers=AUTH)
    assert third.status_code == 202 and third.json()["run_id"] != first


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"since": "2025-06-01", "extra": 1}, "Extra inputs are not permitted"),
        ({"since": "01.06.2025"}, "YYYY-MM-DD"),
        ({"since": "2025-06-01T00:00:00"}, "YYYY-MM-DD"),
        ({"since": 1748736000}, "YYYY-MM-DD"),
        ({"since": "2025-02-30"}, "day is out of range"),
        ({"days": 0}, "at least 1"),
        ({"days": "3"}, "valid integer"),
        ({"days": True}, "valid integer"),
        ({"days": 3, "since": "2025-06-01"}, "either --days or --since"),
        ({"to": "2025-06-01"}, "--to needs --since"),
        ({"since": "2025-06-02", "to": "2025-06-01"}, "is after"),
        ({"dry_run": "yes"}, "valid boolean"),
        ([1, 2], "valid dictionary"),
    ],
    ids=[
        "extra_field",
        "russian_date",
        "datetime",
        "timestamp",
        "impossible_date",
        "zero_days",
        "days_as_text",
        "days_as_bool",
        "days_and_since",
        "to_alone",
        "reversed",
        "dry_run_as_text",
        "not_an_object",
    ],
)
def test_a_bad_body_is_refused_with_the_reason(
    client: TestClient, conn: redis.Redis, body: object, message: str
) -> None:
    answer = client.post("/runs", json=body, headers=AUTH)

    assert answer.status_code == 422
    assert message in json.dumps(answer.json())
    assert queue_for(conn, "sample").count == 0


def test_a_body_is_optional_and_a_dry_run_is_recorded_as_one(
    client: TestClient, conn: redis.Redis, wh: Warehouse
) -> None:
    plain = client.post("/runs", headers=AUTH)
    assert plain.status_code == 202
    drain(conn)

    dry = client.post("/runs", json={"dry_run": True, "days": 3}, headers=AUTH)
    assert dry.status_code == 202
    drain(conn)

    assert client.get(f"/runs/{dry.json()['run_id']}").json()["status"] == "dry_run"
    assert client.get(f"/runs/{plain.json()['run_id']}").json()["status"] == "success"


def test_redis_going_away_gives_503_and_the_service_recovers_without_losing_a_run(
    client: TestClient, conn: redis.Redis, wh: Warehouse, redis_server: RedisServer
) -> None:
    redis_server.stop()
    try:
        refused = client.post("/runs", headers=AUTH)
        health = client.get("/healthz")
        listing = client.get("/runs")
    finally:
        redis_server.start()

    assert refused.status_code == 503
    assert "Redis" in refused.json()["detail"]
    assert health.status_code == 503
    assert "redis" in health.json()["failing"]
    assert "not reachable" in health.json()["checks"]["redis"]
    assert listing.status_code == 200 and listing.json() == []

    again = client.post("/runs", headers=AUTH)
    assert again.status_code == 202
    drain(conn)

    runs = latest_runs(wh, "sample")
    assert [(r["run_id"], r["status"]) for r in runs] == [(again.json()["run_id"], "success")]
    assert wh.scalar("SELECT count() FROM meta_job_runs WHERE job = 'sample'") == 1
    assert queue_for(conn, "sample").count == 0


def test_healthz_is_503_without_a_worker_and_200_with_one(
    client: TestClient, conn: redis.Redis, sample: SourceManifest
) -> None:
    lonely = client.get("/healthz")
    assert lonely.status_code == 503
    assert lonely.json()["failing"] == ["worker"]
    assert "no worker" in lonely.json()["checks"]["worker"]
    assert lonely.json()["checks"]["warehouse"] == "ok" and lonely.json()["checks"]["redis"] == "ok"

    worker = make_worker(sample, conn, embedded=True)
    thread = threading.Thread(target=worker.work, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        healthy = client.get("/healthz")
        assert healthy.status_code == 200
        assert healthy.json() == {
            "status": "ok",
            "source": "sample",
            "failing": [],
            "checks": {"warehouse": "ok", "redis": "ok", "worker": "ok"},
        }

        # The worker run beside the API (serve_source) has died: Redis may not know it yet.
        client.app.state.runtime.local_worker = lambda: "the worker thread has stopped"  # type: ignore[attr-defined]
        dead = client.get("/healthz")
        assert dead.status_code == 503 and dead.json()["failing"] == ["worker"]
        assert dead.json()["checks"]["worker"] == "the worker thread has stopped"
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_a_run_is_worked_by_the_thread_worker_while_the_api_serves(
    client: TestClient, live_worker: ThreadWorker
) -> None:
    run_id = client.post("/runs", headers=AUTH).json()["run_id"]

    deadline = time.monotonic() + 30
    while client.get(f"/runs/{run_id}").json()["status"] != "success":
        assert time.monotonic() < deadline, client.get(f"/runs/{run_id}").json()
        time.sleep(0.1)
    assert client.get("/healthz").status_code == 200


def test_runs_are_listed_newest_first_within_the_limit(client: TestClient, wh: Warehouse) -> None:
    now = time.time()
    for i, status in enumerate(["success", "error", "dry_run"]):
        record_run(wh, run_id=f"r{i}", job="sample", status=status, started_at=now - 100 + i)
    record_run(wh, run_id="other", job="vk_ads", status="success", started_at=now)

    runs = client.get("/runs", params={"limit": 2}).json()

    assert [(r["run_id"], r["status"]) for r in runs] == [("r2", "dry_run"), ("r1", "error")]
    assert [r["run_id"] for r in client.get("/runs").json()] == ["r2", "r1", "r0"]
    for limit in (0, 501, "many"):
        assert client.get("/runs", params={"limit": limit}).status_code == 422
    assert client.get("/runs", params={"limit": 500}).status_code == 200


def test_an_unknown_run_or_another_sources_run_is_404(client: TestClient, wh: Warehouse) -> None:
    record_run(wh, run_id="theirs", job="vk_ads", status="success", started_at=time.time())

    assert client.get("/runs/nope").status_code == 404
    assert client.get("/runs/theirs").status_code == 404
    assert "no run theirs of sample" in client.get("/runs/theirs").json()["detail"]


def test_openapi_docs_describe_the_endpoints_and_the_bearer_token(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    assert {"/runs", "/runs/{run_id}", "/healthz", "/metrics"} <= set(spec["paths"])
    schemes = spec["components"]["securitySchemes"].values()
    assert any({"type": "http", "scheme": "bearer"}.items() <= s.items() for s in schemes)
    assert spec["paths"]["/runs"]["post"]["security"]
    assert client.get("/docs").status_code == 200


def test_no_answer_or_metric_carries_a_secret(
    client: TestClient, conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_FAIL", "auth")
    run_id = client.post("/runs", headers=AUTH).json()["run_id"]
    drain(conn)

    seen = " ".join(
        client.get(path).text for path in ("/healthz", "/metrics", "/runs", f"/runs/{run_id}")
    )
    assert "error" in client.get(f"/runs/{run_id}").json()["status"]
    for secret in (TOKEN, "abc123secret"):
        assert secret not in seen
    assert not re.search(r'run_id="', seen)  # metrics are labelled by source only
