"""`/metrics`: the Prometheus names, their values, and only a `source` label."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import redis
from health_support import Runs
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, Worker
from zakaz_common.alerts import raise_alert
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.testing import serving
from zakaz_health.app import create_app
from zakaz_health.metrics import METRIC_NAMES

REQUIRED = (
    "zakaz_job_last_success_timestamp_seconds",
    "zakaz_job_duration_seconds",
    "zakaz_rows_loaded_total",
    "zakaz_data_freshness_seconds",
    "zakaz_rejected_rows_total",
    "zakaz_alerts_open",
)


def scrape(app: object) -> dict[str, dict[str, float]]:
    """`{sample name: {source: value}}`, checking every sample is labelled by source only."""
    with serving(app) as base_url:
        response = httpx.get(f"{base_url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            assert set(sample.labels) == {"source"}, sample
            samples.setdefault(sample.name, {})[sample.labels["source"]] = sample.value
    return samples


def test_metrics_carry_each_sources_state(
    wh: Warehouse,
    redis_url: str,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
) -> None:
    now = time.time()
    runs.add("qtickets_sheets", "success", finished_ago=7200, took=4, rows=100, rejected=1, now=now)
    runs.add("qtickets_sheets", "success", finished_ago=600, took=3, rows=50, rejected=2, now=now)
    runs.add("qtickets_sheets", "dry_run", finished_ago=60, took=9, rows=999, now=now)
    runs.add("vk_ads", "success", finished_ago=3600, took=10, rows=7, now=now)
    runs.add("vk_ads", "error", finished_ago=120, took=1.25, rejected=3, message="401", now=now)
    raise_alert(wh, "vk_ads", "run_failed", "error", "vk_ads run failed: 401")
    Queue("direct", connection=conn).enqueue("json.loads", "[]")
    live_worker("qtickets_sheets")

    samples = scrape(create_app(redis_url=redis_url, warehouse=wh, manifests=manifests))

    for name in REQUIRED:
        assert name in samples, name
    assert set(samples) == set(METRIC_NAMES)
    last_success = samples["zakaz_job_last_success_timestamp_seconds"]
    assert abs(last_success["qtickets_sheets"] - (now - 600)) <= 1
    assert abs(last_success["vk_ads"] - (now - 3600)) <= 1
    assert "direct" not in last_success  # never succeeded: no made-up sample
    assert samples["zakaz_job_duration_seconds"] == {"qtickets_sheets": 3.0, "vk_ads": 1.25}
    assert samples["zakaz_rows_loaded_total"]["qtickets_sheets"] == 150
    assert samples["zakaz_rows_loaded_total"]["vk_ads"] == 7
    assert samples["zakaz_rows_loaded_total"]["direct"] == 0
    assert samples["zakaz_rejected_rows_total"]["qtickets_sheets"] == 3
    assert samples["zakaz_rejected_rows_total"]["vk_ads"] == 3
    freshness = samples["zakaz_data_freshness_seconds"]
    assert 600 <= freshness["qtickets_sheets"] <= 700
    assert 3600 <= freshness["vk_ads"] <= 3700
    assert samples["zakaz_alerts_open"]["vk_ads"] == 1
    assert samples["zakaz_alerts_open"]["qtickets_sheets"] == 0
    assert samples["zakaz_job_last_run_failed"] == {"qtickets_sheets": 0, "vk_ads": 1}
    assert samples["zakaz_freshness_budget_seconds"]["vk_ads"] == 2 * 86_400
    assert samples["zakaz_source_enabled"]["gmail"] == 0
    assert samples["zakaz_queue_depth"]["direct"] == 1
    assert samples["zakaz_failed_jobs"]["direct"] == 0
    assert samples["zakaz_worker_up"] == {
        "qtickets_sheets": 1,
        "qtickets_api": 0,
        "vk_ads": 0,
        "direct": 0,
        "gmail": 0,
    }


def test_metrics_are_computed_on_each_scrape(
    wh: Warehouse, redis_url: str, manifests: list[SourceManifest], runs: Runs
) -> None:
    app = create_app(redis_url=redis_url, warehouse=wh, manifests=manifests)
    assert scrape(app)["zakaz_rows_loaded_total"]["direct"] == 0

    runs.add("direct", "success", finished_ago=5, rows=42)

    assert scrape(app)["zakaz_rows_loaded_total"]["direct"] == 42
