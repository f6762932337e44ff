"""The business at a glance: today's and yesterday's revenue, ad spend and ROMI.

Read from the BI views DataLens reads (CONTRACT §4), so the page and the dashboard agree:
revenue from `v_sales_latest` by `sale_date`, spend from `v_marketing_daily` by `stat_date`
(all platforms, unparsed spend included), ROMI = revenue ÷ spend as `v_romi_kpi` defines it
(NULL when spend is 0) with its colours. `v_romi_kpi` itself is per show (`city, event_date`),
not per day, so the day's ROMI is computed from the two daily views. Days are Moscow dates of
the moment passed in (the platform's clock, `zakaz_common.clock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from zakaz_common.clickhouse import Warehouse
from zakaz_common.timeutil import MSK

from zakaz_health.rules import Colour

#: ROMI above this is green, as `v_romi_kpi.romi_color` colours it.
ROMI_GREEN_ABOVE = 1.5

#: ROMI from this up to `ROMI_GREEN_ABOVE` is amber (the views' yellow); below it, red.
ROMI_BREAK_EVEN = 1.0

_REVENUE_SQL = """
SELECT sale_date AS day, sum(revenue) AS total FROM v_sales_latest
WHERE sale_date IN ({today:Date}, {yesterday:Date}) GROUP BY sale_date
"""

_SPEND_SQL = """
SELECT stat_date AS day, sum(spend) AS total FROM v_marketing_daily
WHERE stat_date IN ({today:Date}, {yesterday:Date}) GROUP BY stat_date
"""


@dataclass(frozen=True)
class DayFigures:
    """One Moscow day's revenue and spend, in rubles."""

    day: date
    revenue: Decimal
    spend: Decimal

    @property
    def romi(self) -> float | None:
        """Revenue ÷ spend; None when nothing was spent."""
        return float(self.revenue / self.spend) if self.spend else None

    @property
    def romi_colour(self) -> Colour:
        """The colour `v_romi_kpi` gives this ROMI (its yellow is the page's amber)."""
        return romi_colour(self.romi)


@dataclass(frozen=True)
class Figures:
    """Today and yesterday, side by side."""

    today: DayFigures
    yesterday: DayFigures


def romi_colour(romi: float | None) -> Colour:
    """Green above 1.5, amber from 1 to 1.5 inclusive, red below 1, grey without spend."""
    if romi is None:
        return "grey"
    if romi > ROMI_GREEN_ABOVE:
        return "green"
    return "amber" if romi >= ROMI_BREAK_EVEN else "red"


def moscow_day(now: float) -> date:
    """The Moscow date of a Unix time."""
    return datetime.fromtimestamp(now, MSK).date()


def read_figures(wh: Warehouse, now: float) -> Figures:
    """Today's and yesterday's figures (Moscow days of `now`) from the BI views."""
    today = moscow_day(now)
    yesterday = today - timedelta(days=1)
    params = {"today": today, "yesterday": yesterday}
    revenue = {row["day"]: Decimal(row["total"]) for row in wh.dicts(_REVENUE_SQL, params)}
    spend = {row["day"]: Decimal(row["total"]) for row in wh.dicts(_SPEND_SQL, params)}
    zero = Decimal(0)

    def day(d: date) -> DayFigures:
        return DayFigures(d, revenue.get(d, zero), spend.get(d, zero))

    return Figures(today=day(today), yesterday=day(yesterday))
