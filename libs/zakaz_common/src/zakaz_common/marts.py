"""Marts: the rows of five BI views, computed once per run instead of once per dashboard query.

`v_sales_14d`, `v_marketing_daily`, `v_romi_kpi`, `v_inventory` and `v_data_freshness` read a
`mart_*` table holding exactly their rows; the rules live in the matching `calc_*` view
(migration 0009). `refresh_marts` fills a scratch copy of each mart from its `calc_*` view and
swaps it in with `EXCHANGE TABLES`, which is atomic: a dashboard sees the previous rows or the new
ones, never a half-filled table. `execute` calls it after every run (failed ones too), once the
run's outcome is recorded, so the marts are as of the last finished run. Two refreshes that
overlap each use their own scratch table; the one that swaps last wins, and both are whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from zakaz_common.clickhouse import Warehouse

#: Each mart and the view that computes its rows.
MARTS: Final = (
    ("mart_sales_14d", "calc_sales_14d"),
    ("mart_marketing_daily", "calc_marketing_daily"),
    ("mart_romi_kpi", "calc_romi_kpi"),
    ("mart_inventory", "calc_inventory"),
    ("mart_data_freshness", "calc_data_freshness"),
)


@dataclass(frozen=True)
class MartRefresh:
    """What a refresh did."""

    duration_ms: int
    #: Rows now in each mart.
    rows: dict[str, int]


def refresh_marts(wh: Warehouse) -> MartRefresh:
    """Recompute every mart and swap the new rows in."""
    started = time.perf_counter()
    stamp = time.time_ns()
    rows = {}
    for mart, calc in MARTS:
        scratch = f"{mart}__{stamp}"
        wh.command(f"CREATE TABLE {scratch} AS {mart}")
        try:
            wh.command(f"INSERT INTO {scratch} SELECT * FROM {calc}")
            wh.command(f"EXCHANGE TABLES {mart} AND {scratch}")
        finally:
            wh.command(f"DROP TABLE IF EXISTS {scratch}")
        rows[mart] = int(wh.scalar(f"SELECT count() FROM {mart}") or 0)
    return MartRefresh(int((time.perf_counter() - started) * 1000), rows)
