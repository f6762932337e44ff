"""Marts: whole-table aggregates the dashboards need, rebuilt after every run.

`v_romi_kpi` groups every sale and every ad row by show, and `v_data_freshness` needs the
latest loaded date of each source; computed per dashboard query they scan every fact row.
`refresh_marts` computes both once per run into small tables stamped with a generation; the
views read the newest generation, and older ones are deleted. A rebuild that overlaps another
is harmless: a later generation started later, so it saw at least as much.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from zakaz_common.clickhouse import Warehouse

_ROMI = """
INSERT INTO mart_romi_by_show
SELECT {gen:UInt64}, city, event_date, toInt64(sum(sold)), CAST(sum(rev) AS Decimal(18, 2)),
       CAST(sum(vk) AS Decimal(18, 2)), CAST(sum(direct) AS Decimal(18, 2))
FROM
(
    SELECT city, event_date, tickets_sold AS sold, revenue AS rev,
           toDecimal64(0, 2) AS vk, toDecimal64(0, 2) AS direct
    FROM v_sales_latest
    UNION ALL
    SELECT city, event_date, toInt64(0) AS sold, toDecimal64(0, 2) AS rev,
           if(platform = 'vk', spend, toDecimal64(0, 2)) AS vk,
           if(platform = 'direct', spend, toDecimal64(0, 2)) AS direct
    FROM v_marketing_daily
    WHERE city != '' AND event_date IS NOT NULL
)
GROUP BY city, event_date
"""

_DATES = """
INSERT INTO mart_source_dates
SELECT {gen:UInt64}, source, last_data_date FROM
(
    SELECT source, CAST(max(sale_date), 'Nullable(Date)') AS last_data_date
    FROM fact_qtickets_sales_daily FINAL GROUP BY source
    UNION ALL
    SELECT 'vk_ads', CAST(max(stat_date), 'Nullable(Date)') FROM fact_vk_ads_daily FINAL
    GROUP BY 'vk_ads'
    UNION ALL
    SELECT 'direct', CAST(max(stat_date), 'Nullable(Date)') FROM fact_direct_daily FINAL
    GROUP BY 'direct'
)
SETTINGS do_not_merge_across_partitions_select_final = 1
"""


@dataclass(frozen=True)
class MartRefresh:
    """What a refresh did."""

    generation: int
    duration_ms: int


def refresh_marts(wh: Warehouse) -> MartRefresh:
    """Rebuild every mart as a new generation and drop the older ones."""
    started = time.perf_counter()
    gen = time.time_ns()
    for sql in (_ROMI, _DATES):
        wh.command(sql, {"gen": gen})
    for table in ("mart_romi_by_show", "mart_source_dates"):
        wh.command(f"DELETE FROM {table} WHERE generation < {{gen:UInt64}}", {"gen": gen})
    return MartRefresh(generation=gen, duration_ms=int((time.perf_counter() - started) * 1000))
