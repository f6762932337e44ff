"""BI latency: each view's typical DataLens query against the same query on a deduplicated copy.

10,000,000 sales fact rows (8 M live keys over three sources, 2 M superseded versions, 1 %
retracted), 2,000,000 ad rows and the seat inventory of 5,000 events (two feeds, three
observations each) are generated inside ClickHouse. For every `v_*` view the
typical DataLens query (a month filtered by city, grouped by day) runs against the view and
against a plain MergeTree holding the view's output (the baseline): p50/p95 of each, their ratio.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta

from zakaz_common.clickhouse import Warehouse
from zakaz_common.timeutil import today_msk

#: Sales fact rows in all (live + superseded + tombstones), and ad rows.
SALES_ROWS = 10_000_000
AD_ROWS = 2_000_000
DAYS = 730
EVENTS = 5000
CITIES = (
    "москва",
    "санкт-петербург",
    "екатеринбург",
    "казань",
    "новосибирск",
    "нижний новгород",
    "ростов-на-дону",
    "самара",
    "омск",
    "челябинск",
    "уфа",
    "красноярск",
    "пермь",
    "воронеж",
    "волгоград",
    "краснодар",
    "саратов",
    "тюмень",
    "ижевск",
    "барнаул",
)
#: First day of the generated data: the data ends today, so v_sales_14d has rows.
START = today_msk() - timedelta(days=DAYS - 1)


@dataclass(frozen=True)
class Latency:
    """Timings of one query pair."""

    view: str
    p50_ms: float
    p95_ms: float
    base_p50_ms: float
    base_p95_ms: float

    @property
    def ratio(self) -> float:
        """p95 of the view over p95 of the baseline."""
        return self.p95_ms / self.base_p95_ms if self.base_p95_ms else float("inf")


def generate(wh: Warehouse) -> None:
    """Fill the facts with synthetic rows (SQL-side, so Python memory stays flat)."""
    cities = "[" + ", ".join(f"'{c}'" for c in CITIES) + "]"
    wh.command(
        f"""
        INSERT INTO dim_events_src (event_id, source, event_name, event_date, city, row_hash, run_id,
                                    loaded_at, _ver, _deleted)
        SELECT toString(number), 'qtickets_sheets', concat('Шоу ', toString(number)),
               toDate('{START}') + (number * 7) % {DAYS}, {cities}[1 + number % {len(CITIES)}],
               0, 'bench', now(), 1, 0
        FROM numbers({EVENTS})
        """
    )
    live = SALES_ROWS * 8 // 10
    superseded = SALES_ROWS * 19 // 100
    tombstones = SALES_ROWS - live - superseded
    key = (
        f"toDate('{START}') + (k % {DAYS}) AS sale_date, toString(intDiv(k, {DAYS}) % {EVENTS}) AS event_id, "
        f"['qtickets_sheets', 'qtickets_api', 'gmail'][1 + intDiv(k, {DAYS * EVENTS}) % 3] AS source"
    )
    common = "'' AS event_name, '' AS city"
    wh.command(
        f"""
        INSERT INTO fact_qtickets_sales_daily
        SELECT sale_date, event_id, source, event_name, city, toInt64(1 + k % 7) AS tickets_sold,
               toDecimal64(1500 + (k % 40) * 100, 2) AS revenue, k AS row_hash, 'bench', now(), 2, 0
        FROM (SELECT number AS k, {key}, {common} FROM numbers({live}))
        SETTINGS max_insert_threads = 2
        """
    )
    wh.command(
        f"""
        INSERT INTO fact_qtickets_sales_daily
        SELECT sale_date, event_id, source, event_name, city, toInt64(1), toDecimal64(999, 2), k, 'bench',
               now(), 1, 0
        FROM (SELECT number * 4 AS k, {key}, {common} FROM numbers({superseded}))
        """
    )
    wh.command(
        f"""
        INSERT INTO fact_qtickets_sales_daily
        SELECT sale_date, event_id, source, event_name, city, toInt64(0), toDecimal64(0, 2), k, 'bench',
               now(), 3, 1
        FROM (SELECT number * 80 + 3 AS k, {key}, {common} FROM numbers({tombstones}))
        """
    )
    # Seat inventory of every event from both QTickets feeds, each observed three times.
    wh.command(
        f"""
        INSERT INTO fact_qtickets_inventory_latest
        SELECT toString(number % {EVENTS}), ['qtickets_sheets', 'qtickets_api'][1 + intDiv(number, {EVENTS}) % 2],
               concat('Шоу ', toString(number % {EVENTS})),
               toDate('{START}') + ((number % {EVENTS}) * 7) % {DAYS}, {cities}[1 + number % {len(CITIES)}],
               500, toInt64(number % 500), now(), number, 'bench', now(), 1 + intDiv(number, {EVENTS * 2}), 0
        FROM numbers({EVENTS * 6})
        """
    )
    for table, platform_cols in (
        (
            "fact_vk_ads_daily",
            "toString(k % 3) AS account, toString(k % 97) AS ad_plan_id, "
            "concat('План ', toString(k % 97)) AS ad_plan_name, toString(k % 500) AS ad_group_id, '' AS ad_group_name, "
            "toString(k) AS banner_id",
        ),
        (
            "fact_direct_daily",
            "'client' AS account, toString(k % 83) AS campaign_id, "
            "concat('Кампания ', toString(k % 83)) AS campaign_name, toString(k % 400) AS ad_group_id, "
            "toString(k) AS ad_id",
        ),
    ):
        extra = ", true AS include_vat" if table == "fact_direct_daily" else ""
        wh.command(
            f"""
            INSERT INTO {table}
            SELECT toDate('{START}') + (k % {DAYS}) AS stat_date, {platform_cols},
                   toUInt64(1000 + k % 5000) AS impressions, toUInt64(k % 90) AS clicks,
                   toDecimal64((k % 3000) / 3, 2) AS spend{extra},
                   'vk' AS utm_source, 'cpc' AS utm_medium, '' AS utm_campaign, '' AS utm_content, '' AS utm_term,
                   if(k % 10 = 0, '', {cities}[1 + k % {len(CITIES)}]) AS city,
                   if(k % 10 = 0, NULL, toDate('{START}') + ((k * 7) % {DAYS})) AS event_date,
                   k AS row_hash, 'bench' AS run_id, now() AS loaded_at, 1 AS _ver, 0 AS _deleted
            FROM (SELECT number AS k FROM numbers({AD_ROWS // 2}))
            """
        )


def queries(month_start: date, city: str) -> dict[str, str]:
    """The typical DataLens query of each view (a month, one city, by day)."""
    end = month_start + timedelta(days=30)
    window = f"BETWEEN toDate('{month_start}') AND toDate('{end}')"
    return {
        "v_sales_latest": f"SELECT sale_date, sum(tickets_sold), sum(revenue) FROM {{t}} WHERE sale_date {window} "
        f"AND city = '{city}' GROUP BY sale_date ORDER BY sale_date",
        "v_sales_14d": f"SELECT sale_date, sum(revenue) FROM {{t}} WHERE city = '{city}' GROUP BY sale_date",
        "v_marketing_daily": f"SELECT stat_date, platform, sum(spend), sum(clicks) FROM {{t}} WHERE stat_date {window} "
        f"AND city = '{city}' GROUP BY stat_date, platform ORDER BY stat_date",
        "v_campaign_performance": f"SELECT stat_date, platform, sum(spend), avg(ctr) FROM {{t}} "
        f"WHERE stat_date {window} GROUP BY stat_date, platform ORDER BY stat_date",
        "v_romi_kpi": f"SELECT event_date, revenue, spend, romi, romi_color FROM {{t}} WHERE city = '{city}' "
        f"AND event_date {window} ORDER BY event_date",
        "v_inventory": f"SELECT * FROM {{t}} WHERE city = '{city}'",
        "v_data_freshness": "SELECT * FROM {t}",
    }


def materialise_baselines(wh: Warehouse) -> None:
    """Copy each view's output into a plain MergeTree (the deduplicated baseline)."""
    for view in queries(START, CITIES[0]):
        wh.command(f"DROP TABLE IF EXISTS base_{view}")
        wh.command(
            f"CREATE TABLE base_{view} ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM {view}"
        )


def measure(wh: Warehouse, repeats: int = 30) -> list[Latency]:
    """p50/p95 of every view's query and of its baseline, interleaved."""
    month = START + timedelta(days=400)
    results = []
    for view, sql in queries(month, CITIES[1]).items():
        timings: dict[str, list[float]] = {"view": [], "base": []}
        for _ in range(repeats):
            for kind, table in (("view", view), ("base", f"base_{view}")):
                started = time.perf_counter()
                wh.rows(sql.format(t=table))
                timings[kind].append((time.perf_counter() - started) * 1000)
        results.append(
            Latency(
                view,
                _pct(timings["view"], 50),
                _pct(timings["view"], 95),
                _pct(timings["base"], 50),
                _pct(timings["base"], 95),
            )
        )
    return results


def _pct(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
