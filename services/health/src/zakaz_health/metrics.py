"""Prometheus metrics computed on scrape from run rows and Redis (RQ forks jobs: in-job counters die).

Every metric is labelled by `source` only. A source that never succeeded has no
last-success or freshness sample rather than a made-up zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from zakaz_common import clock

from zakaz_health.state import Snapshot

#: Every metric name the health service exports (the counters with their `_total` suffix).
METRIC_NAMES = (
    "zakaz_job_last_success_timestamp_seconds",
    "zakaz_job_duration_seconds",
    "zakaz_rows_loaded_total",
    "zakaz_data_freshness_seconds",
    "zakaz_rejected_rows_total",
    "zakaz_alerts_open",
    "zakaz_job_last_run_failed",
    "zakaz_freshness_budget_seconds",
    "zakaz_source_enabled",
    "zakaz_queue_depth",
    "zakaz_failed_jobs",
    "zakaz_worker_up",
)

_LABELS = ["source"]


class SourceCollector(Collector):
    """A collector that reads a fresh `Snapshot` on every scrape."""

    def __init__(self, snapshot: Callable[[float], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family for the current state."""
        snap = self._snapshot(clock.now())
        last_success = GaugeMetricFamily(
            "zakaz_job_last_success_timestamp_seconds",
            "Unix time the source's last successful run finished.",
            labels=_LABELS,
        )
        duration = GaugeMetricFamily(
            "zakaz_job_duration_seconds",
            "Duration of the source's last run that ended in success or error.",
            labels=_LABELS,
        )
        rows = CounterMetricFamily(
            "zakaz_rows_loaded",
            "Rows processed by the source's successful runs, all time.",
            labels=_LABELS,
        )
        freshness = GaugeMetricFamily(
            "zakaz_data_freshness_seconds",
            "Seconds since the source's last successful run finished.",
            labels=_LABELS,
        )
        rejected = CounterMetricFamily(
            "zakaz_rejected_rows",
            "Rows the source's runs rejected as unreadable, all time.",
            labels=_LABELS,
        )
        alerts = GaugeMetricFamily(
            "zakaz_alerts_open", "Alerts of the source not yet resolved.", labels=_LABELS
        )
        failed = GaugeMetricFamily(
            "zakaz_job_last_run_failed",
            "1 when the source's last run with a verdict failed, else 0.",
            labels=_LABELS,
        )
        budget = GaugeMetricFamily(
            "zakaz_freshness_budget_seconds",
            "How old the source's last success may get before it is stale.",
            labels=_LABELS,
        )
        enabled = GaugeMetricFamily(
            "zakaz_source_enabled", "1 when the source is enabled, else 0.", labels=_LABELS
        )
        depth = GaugeMetricFamily(
            "zakaz_queue_depth", "Jobs waiting on the source's RQ queue.", labels=_LABELS
        )
        failed_jobs = GaugeMetricFamily(
            "zakaz_failed_jobs", "Jobs in the source's RQ failed-job registry.", labels=_LABELS
        )
        worker_up = GaugeMetricFamily(
            "zakaz_worker_up",
            "1 when a worker with a fresh heartbeat serves the source's queue, else 0.",
            labels=_LABELS,
        )
        for s in snap.sources:
            label = [s.source]
            alerts.add_metric(label, s.open_alerts)
            if not s.installed:
                continue
            if s.last_success_at is not None:
                last_success.add_metric(label, s.last_success_at)
            if s.age_seconds is not None:
                freshness.add_metric(label, s.age_seconds)
            if s.last_verdict is not None:
                if s.last_verdict.duration_seconds is not None:
                    duration.add_metric(label, s.last_verdict.duration_seconds)
                failed.add_metric(label, 1.0 if s.failed else 0.0)
            rows.add_metric(label, s.rows_loaded_total)
            rejected.add_metric(label, s.rows_rejected_total)
            if s.budget_seconds is not None:
                budget.add_metric(label, s.budget_seconds)
            enabled.add_metric(label, 1.0 if s.enabled else 0.0)
            if s.queue is not None:
                depth.add_metric(label, s.queue.depth)
                failed_jobs.add_metric(label, s.queue.failed_jobs)
                worker_up.add_metric(label, 1.0 if s.queue.worker_alive else 0.0)
        yield from (
            last_success,
            duration,
            rows,
            freshness,
            rejected,
            alerts,
            failed,
            budget,
            enabled,
            depth,
            failed_jobs,
            worker_up,
        )


def build_registry(snapshot: Callable[[float], Snapshot]) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding the source collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SourceCollector(snapshot))
    return registry
