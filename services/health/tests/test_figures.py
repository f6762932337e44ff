"""Today's and yesterday's revenue, spend and ROMI, read from the BI views."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from health_support import add_sale, add_vk_spend
from zakaz_common.clickhouse import Warehouse
from zakaz_common.marts import refresh_marts
from zakaz_common.timeutil import MSK
from zakaz_health.figures import DayFigures, moscow_day, read_figures, romi_colour

#: 2026-09-10 00:30 in Moscow, i.e. still 2026-09-09 in UTC: the day must be Moscow's.
NOW = datetime(2026, 9, 10, 0, 30, tzinfo=MSK).timestamp()


def test_figures_come_from_the_views_by_moscow_day(wh: Warehouse) -> None:
    today = moscow_day(NOW)
    assert today.isoformat() == "2026-09-10"
    yesterday = today - timedelta(days=1)
    add_sale(wh, today, "e1", Decimal("1200.00"))
    add_sale(wh, today, "e2", Decimal("300.50"))
    add_sale(wh, yesterday, "e1", Decimal("900.00"))
    add_sale(wh, today - timedelta(days=2), "e1", Decimal("99999.00"))
    add_vk_spend(wh, today, "b1", Decimal("1000.00"))
    add_vk_spend(wh, yesterday, "b1", Decimal("450.00"))
    add_vk_spend(wh, yesterday, "b2", Decimal("450.00"))
    refresh_marts(wh)

    found = read_figures(wh, NOW)

    assert found.today == DayFigures(today, Decimal("1500.50"), Decimal("1000.00"))
    assert found.yesterday == DayFigures(yesterday, Decimal("900.00"), Decimal("900.00"))
    assert found.today.romi == pytest.approx(1.5005)
    assert found.yesterday.romi == pytest.approx(1.0)


def test_an_empty_warehouse_has_zero_figures_and_no_romi(wh: Warehouse) -> None:
    found = read_figures(wh, NOW)

    assert (found.today.revenue, found.today.spend, found.today.romi) == (0, 0, None)
    assert found.today.romi_colour == "grey"


@pytest.mark.parametrize(
    ("romi", "colour"),
    [(None, "grey"), (0.0, "red"), (0.99, "red"), (1.0, "amber"), (1.5, "amber"), (1.51, "green")],
)
def test_romi_colours_as_the_views_do(romi: float | None, colour: str) -> None:
    assert romi_colour(romi) == colour
