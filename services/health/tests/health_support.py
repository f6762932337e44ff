"""Helpers of the health tests: manifests as sources declare them, run rows at chosen times."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
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
