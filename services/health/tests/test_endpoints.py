"""The JSON endpoints against a real Redis and the embedded warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from health_support import Runs, manifest
from rq import Queue, SimpleWorker, Worker
from zakaz_common.alerts import raise_alert
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.testing import serving
from zakaz_health.app import create_app
from zakaz_health.queues import enabled_key

HOUR = 3600.0
DAY = 86_400.0


@contextmanager
def http(app: FastAPI) -> Iterator[httpx.Client]:
    """An HTTP client of the app served by uvicorn on loopback."""
    with serving(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture
def client(
    wh: Warehouse, redis_url: str, manifests: list[SourceManifest]
) -> Iterator[httpx.Client]:
    """The health app over the test's warehouse, Redis and manifests."""
    with http(create_app(redis_url=redis_url, warehouse=wh, manifests=manifests)) as c:
        yield c


def _get(app: FastAPI, path: str) -> httpx.Response:
    with http(app) as client:
        return client.get(path)


def source(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.get(f"/healthz/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_healthz_answers_200_when_warehouse_and_redis_answer(client: httpx.Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"warehouse": "ok", "redis": "ok"}}


def test_healthz_answers_503_naming_redis_when_it_is_down(
    wh: Warehouse, manifests: list[SourceManifest]
) -> None:
    app = create_app(
        redis_url="redis://:hunter2pw@127.0.0.1:9/0", warehouse=wh, manifests=manifests
    )

    response = _get(app, "/healthz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["warehouse"] == "ok"
    assert checks["redis"].startswith("error: redis://:***@127.0.0.1:9/0")
    assert "hunter2pw" not in response.text


def test_a_fresh_source(
    client: httpx.Client, runs: Runs, live_worker: Callable[[str], Worker]
) -> None:
    runs.add("qtickets_sheets", "success", finished_ago=300, took=1.5, rows=120, rejected=2)
    live_worker("qtickets_sheets")

    body = source(client, "qtickets_sheets")

    assert body["state"] == "green"
    assert body["reason"] == "fresh"
    assert body["installed"] is True and body["enabled"] is True
    assert body["rows"] == 120
    assert body["rows_loaded_total"] == 120
    assert body["rows_rejected_total"] == 2
    assert body["last_run"]["status"] == "success"
    assert body["last_run"]["duration_seconds"] == 1.5
    assert body["last_success_at"] is not None
    fresh = body["freshness"]
    assert fresh["stale"] is False and fresh["late"] is False
    assert fresh["budget_seconds"] == 1800
    assert 290 <= fresh["age_seconds"] <= 600
    assert (body["queue_depth"], body["failed_jobs"], body["worker_alive"]) == (0, 0, True)
    assert body["open_alerts"] == 0
    assert [r["status"] for r in body["recent_runs"]] == ["success"]


def test_a_failed_source(client: httpx.Client, runs: Runs) -> None:
    runs.add("vk_ads", "success", finished_ago=DAY, rows=40)
    runs.add("vk_ads", "error", finished_ago=60, message="VK answered 401: token=abc123secret")

    body = source(client, "vk_ads")

    assert body["state"] == "red"
    assert body["reason"] == "last run failed"
    assert body["last_run"]["status"] == "error"
    assert "401" in body["last_run"]["message"]
    assert "abc123secret" not in str(body)
    # The data itself is still within its two-day budget: the failure alone makes it red.
    assert body["freshness"]["stale"] is False
    assert body["rows"] == 40
    assert body["worker_alive"] is False


def test_a_stale_source(client: httpx.Client, runs: Runs) -> None:
    runs.add("direct", "success", finished_ago=3 * DAY, rows=10)

    body = source(client, "direct")
    freshness = client.get("/healthz/freshness").json()

    assert body["state"] == "red"
    assert body["reason"].startswith("stale")
    assert body["freshness"]["stale"] is True
    assert body["freshness"]["budget_seconds"] == 2 * DAY
    assert body["freshness"]["age_seconds"] > 3 * DAY - 60
    assert freshness["stale"] == ["direct"]
    by_source = {s["source"]: s for s in freshness["sources"]}
    assert by_source["direct"]["stale"] is True
    assert by_source["vk_ads"]["stale"] is False
    assert by_source["vk_ads"]["last_success_at"] is None


def test_a_source_past_half_its_budget_is_late_not_stale(
    client: httpx.Client, runs: Runs, live_worker: Callable[[str], Worker]
) -> None:
    runs.add("qtickets_api", "success", finished_ago=20 * 60)
    live_worker("qtickets_api")

    body = source(client, "qtickets_api")

    assert (body["state"], body["reason"]) == ("amber", "running late")


def test_fresh_data_is_not_green_while_the_worker_is_dead_or_an_alert_is_open(
    client: httpx.Client, wh: Warehouse, runs: Runs, live_worker: Callable[[str], Worker]
) -> None:
    for name in ("qtickets_sheets", "qtickets_api", "vk_ads"):
        runs.add(name, "success", finished_ago=60)
    live_worker("qtickets_api")
    live_worker("vk_ads")
    raise_alert(wh, "qtickets_api", "worker_dead", "error", "qtickets_api: no RQ worker")
    raise_alert(wh, "vk_ads", "held_back", "warning", "vk_ads: 3 keys kept")

    states = {
        name: (source(client, name)["state"], source(client, name)["reason"])
        for name in ("qtickets_sheets", "qtickets_api", "vk_ads")
    }

    assert states == {
        "qtickets_sheets": ("red", "worker dead"),
        "qtickets_api": ("red", "open alert: worker dead"),
        "vk_ads": ("amber", "open alert: held back"),
    }


def test_an_unknown_source_is_404(client: httpx.Client) -> None:
    response = client.get("/healthz/no_such_source")

    assert response.status_code == 404
    assert "qtickets_sheets" in response.json()["detail"]


def test_detailed_lists_contract_sources_installed_or_not_plus_extra_ones(
    wh: Warehouse, redis_url: str, runs: Runs, live_worker: Callable[[str], Worker]
) -> None:
    only = [
        manifest("vk_ads", "VK Ads", "0 0 * * *", timedelta(days=2)),
        manifest("afisha", "Afisha", "0 * * * *", timedelta(hours=2)),
    ]
    runs.add("afisha", "success", finished_ago=60, rows=5)
    live_worker("afisha")
    live_worker("vk_ads")
    with http(create_app(redis_url=redis_url, warehouse=wh, manifests=only)) as client:
        body = client.get("/healthz/detailed").json()
        extra = client.get("/healthz/afisha")

    names = [s["source"] for s in body["sources"]]
    assert names == ["qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail", "afisha"]
    by_source = {s["source"]: s for s in body["sources"]}
    assert by_source["direct"]["installed"] is False
    assert (by_source["direct"]["state"], by_source["direct"]["reason"]) == (
        "grey",
        "not installed",
    )
    assert (by_source["vk_ads"]["state"], by_source["vk_ads"]["reason"]) == ("amber", "never ran")
    assert by_source["afisha"]["state"] == "green"
    assert body["status"] == "ok" and body["redis"] == "ok"
    assert extra.status_code == 200


def test_enabled_flag_comes_from_redis_else_the_manifest(
    client: httpx.Client, conn: redis.Redis, runs: Runs, live_worker: Callable[[str], Worker]
) -> None:
    live_worker("gmail")
    runs.add("gmail", "success", finished_ago=60)
    runs.add("qtickets_api", "success", finished_ago=60)
    assert source(client, "gmail")["enabled"] is False

    conn.set(enabled_key("gmail"), "1")
    conn.set(enabled_key("qtickets_api"), "0")

    assert (source(client, "gmail")["enabled"], source(client, "gmail")["state"]) == (True, "green")
    api = source(client, "qtickets_api")
    assert (api["enabled"], api["state"], api["reason"]) == (False, "amber", "disabled")


def test_queue_depth_failed_jobs_and_workers_come_from_rq(
    client: httpx.Client, conn: redis.Redis, live_worker: Callable[[str], Worker]
) -> None:
    queue = Queue("direct", connection=conn)
    queue.enqueue("json.loads", "[]")
    queue.enqueue("json.loads", "[]")
    failing = Queue("vk_ads", connection=conn)
    failing.enqueue("json.loads", "not json")
    SimpleWorker([failing], connection=conn).work(burst=True)
    live_worker("vk_ads")

    direct = source(client, "direct")
    vk = source(client, "vk_ads")

    assert (direct["queue_depth"], direct["failed_jobs"], direct["worker_alive"]) == (2, 0, False)
    assert (vk["queue_depth"], vk["failed_jobs"]) == (0, 1)


def test_detailed_degrades_without_redis(wh: Warehouse, manifests: list[SourceManifest]) -> None:
    app = create_app(redis_url="redis://127.0.0.1:9/0", warehouse=wh, manifests=manifests)

    body = _get(app, "/healthz/detailed").json()

    assert body["status"] == "degraded"
    assert body["redis"].startswith("error")
    assert all(s["queue_depth"] is None and s["worker_alive"] is None for s in body["sources"])
    by_source = {s["source"]: s["enabled"] for s in body["sources"]}
    assert by_source["gmail"] is False and by_source["vk_ads"] is True
