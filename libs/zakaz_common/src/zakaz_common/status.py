"""Per-source status for `zakaz status`: last run, freshness and queue state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from zakaz_common.clickhouse import Warehouse
from zakaz_common.locks import lock_key, redis_available, redis_client
from zakaz_common.manifest import CONTRACT_SOURCES, SourceManifest


@dataclass(frozen=True)
class SourceStatus:
    """One source's state as the operator sees it."""

    source: str
    installed: bool
    last_status: str | None
    last_started_at: datetime | None
    last_rows: int | None
    last_success_at: datetime | None
    last_data_date: date | None
    days_behind: int | None
    last_error: str | None
    queued: int | None
    locked: bool | None


def source_statuses(
    wh: Warehouse, manifests: Iterable[SourceManifest], redis_url: str
) -> list[SourceStatus]:
    """Status of every contract source plus any other installed one."""
    installed = {m.name for m in manifests}
    names = list(CONTRACT_SOURCES) + sorted(installed - set(CONTRACT_SOURCES))
    fresh = {r["source"]: r for r in wh.dicts("SELECT * FROM v_data_freshness")}
    last: dict[str, dict[str, Any]] = {
        r["job"]: r
        for r in wh.dicts(
            "SELECT job, argMax(status, tuple(started_at, _ver)) AS last_status, "
            "max(started_at) AS last_started, argMax(rows_processed, tuple(started_at, _ver)) AS rows "
            "FROM meta_job_runs GROUP BY job"
        )
    }
    client = redis_client(redis_url, timeout=0.5)
    up = redis_available(client)
    result = []
    for name in names:
        f = fresh.get(name, {})
        run = last.get(name, {})
        queued = locked = None
        if up:
            # RQ keeps a queue's job ids in the list rq:queue:<name>.
            queued = int(client.llen(f"rq:queue:{name}"))
            locked = bool(client.exists(lock_key(name)))
        result.append(
            SourceStatus(
                source=name,
                installed=name in installed,
                last_status=run.get("last_status"),
                last_started_at=run.get("last_started"),
                last_rows=run.get("rows"),
                last_success_at=f.get("last_success_at"),
                last_data_date=f.get("last_data_date"),
                days_behind=f.get("days_behind"),
                last_error=f.get("last_error") or None,
                queued=queued,
                locked=locked,
            )
        )
    return result
