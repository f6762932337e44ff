"""`/metrics` of a source service: what only the source exports, in Prometheus text format.

The health service owns every per-source state metric (last success, freshness, duration, rows,
queue depth, worker, alerts) and exports them for all sources at once; a source repeating them
would show each source twice on the dashboard. What a source exports here is its own count of
finished runs by final status, computed on scrape from `meta_job_runs` (nothing is counted
in-process: a forking worker's job counters die with its work horse).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from zakaz_common.api.deps import Runtime
from zakaz_common.errors import ZakazError
from zakaz_common.runs import FINAL_STATUSES

log = logging.getLogger(__name__)

#: Every metric name a source service exports (the health service exports the others).
METRIC_NAMES = ("zakaz_job_runs_total",)


class SourceCollector:
    """Collects one source's own metrics from the warehouse at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def source(self) -> str:
        """The source's name."""
        return self.runtime.source

    def collect(self) -> Iterator[Metric]:
        """The source's metrics; without a warehouse answer, the family has no samples."""
        runs = CounterMetricFamily(
            "zakaz_job_runs",
            "Finished runs of the source by final status (success, error, dry_run).",
            labels=["source", "status"],
        )
        try:
            counts = self._runs_by_status()
        except (ZakazError, OSError) as exc:
            log.warning("metrics of %s: the warehouse did not answer: %s", self.source, exc)
        else:
            for status in sorted(FINAL_STATUSES):
                runs.add_metric([self.source, status], float(counts.get(status, 0)))
        yield runs

    def _runs_by_status(self) -> dict[str, int]:
        rows = self.runtime.warehouse().dicts(
            "SELECT status, count() AS runs FROM meta_job_runs "
            "WHERE job = {job:String} GROUP BY status",
            {"job": self.source},
        )
        return {r["status"]: int(r["runs"]) for r in rows}


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
