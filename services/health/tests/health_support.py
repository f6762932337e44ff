"""Helpers of the health tests: manifests as sources declare them, run rows at chosen times."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import Status, record_run


def manifest(
    name: str, title: str, schedule: str, budget: timedelta, *, enabled: bool = True
) -> SourceManifest:
    """A manifest as a source package declares it (its load is never called here)."""
    return SourceManifest(
        name=name,
        title=title,
        load="zakaz_health_tests_no_such_module:load",
        schedule=schedule,
        tables=(),
        freshness_budget=budget,
        enabled_by_default=enabled,
    )


@dataclass
class Runs:
    """Writes run rows into `meta_job_runs` the way `zakaz_common.runs` does, at given times."""

    wh: Warehouse

    def add(
        self,
        source: str,
        status: Status,
        *,
        finished_ago: float | None,
        took: float = 2.0,
        rows: int = 0,
        rejected: int = 0,
        message: str = "",
        now: float | None = None,
    ) -> str:
        """Record one run that finished `finished_ago` seconds before `now` (None: unfinished)."""
        now = now if now is not None else time.time()
        run_id = uuid.uuid4().hex
        finished = now - finished_ago if finished_ago is not None else None
        started = (finished if finished is not None else now) - took
        metrics: dict[str, Any] = {"duration_ms": int(took * 1000)} if finished else {}
        record_run(
            self.wh,
            run_id=run_id,
            job=source,
            status=status,
            started_at=started,
            finished_at=finished,
            rows_processed=rows,
            rows_rejected=rejected,
            message=message,
            metrics=metrics,
        )
        return run_id


_SALES_COLUMNS = [
    "sale_date",
    "event_id",
    "source",
    "event_name",
    "city",
    "tickets_sold",
    "revenue",
    "row_hash",
    "run_id",
    "loaded_at",
    "_ver",
    "_deleted",
]

_VK_COLUMNS = [
    "stat_date",
    "account",
    "ad_plan_id",
    "banner_id",
    "impressions",
    "clicks",
    "spend",
    "city",
    "event_date",
    "row_hash",
    "run_id",
    "loaded_at",
    "_ver",
    "_deleted",
]


def add_sale(wh: Warehouse, day: date, event_id: str, revenue: Decimal, tickets: int = 1) -> None:
    """A published sales row of `qtickets_sheets` (refresh the marts to see it in the views)."""
    wh.insert(
        "fact_qtickets_sales_daily",
        [(day, event_id, "qtickets_sheets", "Show", "москва", tickets, revenue, 0, "r1", 0, 1, 0)],
        _SALES_COLUMNS,
    )


def add_vk_spend(wh: Warehouse, day: date, banner_id: str, spend: Decimal) -> None:
    """A published VK Ads row of one banner (refresh the marts to see it in the views)."""
    wh.insert(
        "fact_vk_ads_daily",
        [(day, "acc", "p1", banner_id, 1000, 10, spend, "москва", day, 0, "r1", 0, 1, 0)],
        _VK_COLUMNS,
    )
