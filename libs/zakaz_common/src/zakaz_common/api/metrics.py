"""`/metrics`: the source's run and queue state in Prometheus text format, computed on scrape.

Nothing is counted in-process (a forking worker's job counters die with its work horse): every
scrape reads `meta_job_runs` and Redis. Labels are the source (and a run's final status) only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from zakaz_common.api.deps import Runtime
from zakaz_common.api.health import worker_problem
from zakaz_common.errors import ZakazError
from zakaz_common.jobs import queue_for
from zakaz_common.runs import FINAL_STATUSES

log = logging.getLogger(__name__)

_SOURCE = ["source"]


class SourceCollector:
    """Collects one source's metrics from the warehouse and Redis at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        """Every metric of the source; a part that does not answer is left out."""
        try:
            yield from self._runs()
        except (ZakazError, OSError) as exc:
            log.warning("metrics of %s: the warehouse did not answer: %s", self.source, exc)
        yield from self._queue()

    @property
    def source(self) -> str:
        """The source's name."""
        return self.runtime.source

    def _runs(self) -> Iterator[Metric]:
        wh = self.runtime.warehouse()
        by_status = {
            r["status"]: r
            for r in wh.dicts(
                "SELECT status, count() AS runs, max(toUnixTimestamp(finished_at)) AS last "
                "FROM meta_job_runs WHERE job = {job:String} GROUP BY status",
                {"job": self.source},
            )
        }
        last_ms = wh.scalar(
            "SELECT JSONExtractFloat(metrics, 'duration_ms') FROM meta_job_runs "
            "WHERE job = {job:String} AND status IN {final:Array(String)} "
            "ORDER BY finished_at DESC, _ver DESC LIMIT 1",
            {"job": self.source, "final": sorted(FINAL_STATUSES)},
        )
        success = GaugeMetricFamily(
            "zakaz_job_last_success_timestamp_seconds",
            "Unix time the source's last successful run finished.",
            labels=_SOURCE,
        )
        last_success = by_status.get("success", {}).get("last")
        if last_success:
            success.add_metric([self.source], float(last_success))
        yield success
        duration = GaugeMetricFamily(
            "zakaz_job_last_run_duration_seconds",
            "How long the source's last finished run took.",
            labels=_SOURCE,
        )
        if last_ms is not None:
            duration.add_metric([self.source], float(last_ms) / 1000)
        yield duration
        runs = CounterMetricFamily(
            "zakaz_job_runs",
            "Finished runs of the source by final status (success, error, dry_run).",
            labels=[*_SOURCE, "status"],
        )
        for status in sorted(FINAL_STATUSES):
            runs.add_metric([self.source, status], float(by_status.get(status, {}).get("runs", 0)))
        yield runs

    def _queue(self) -> Iterator[Metric]:
        alive = GaugeMetricFamily(
            "zakaz_worker_alive",
            "1 when a worker with a fresh heartbeat serves the source's queue, else 0.",
            labels=_SOURCE,
        )
        depth = GaugeMetricFamily(
            "zakaz_queue_depth", "Runs waiting on the source's RQ queue.", labels=_SOURCE
        )
        try:
            depth.add_metric(
                [self.source], float(queue_for(self.runtime.redis(), self.source).count)
            )
            alive.add_metric([self.source], 0.0 if worker_problem(self.runtime) else 1.0)
        except (RedisError, OSError) as exc:
            log.warning("metrics of %s: Redis did not answer: %s", self.source, exc)
            alive.add_metric([self.source], 0.0)
        yield alive
        yield depth


def registry_for(runtime: Runtime) -> CollectorRegistry:
    """A registry of its own for one app (never the global one: apps and tests stay apart)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SourceCollector(runtime))
    return registry


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """The source's metrics in Prometheus text format."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
