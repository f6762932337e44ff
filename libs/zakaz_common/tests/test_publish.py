"""Publishing a run: which live rows a staged key is compared with, and what is written."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from factrows import event, load, sale
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import EVENTS, SALES
from zakaz_common.load import Scope

DAY = date(2026, 11, 2)
API = Scope(equals={"source": ["qtickets_api"]}, since=DAY, to=DAY + timedelta(days=2))


def live(wh: Warehouse, source: str) -> list[tuple[object, ...]]:
    return wh.rows(
        "SELECT sale_date, event_id, tickets_sold, revenue FROM fact_qtickets_sales_daily "
        "FINAL WHERE source = {s:String} AND _deleted = 0 ORDER BY sale_date, event_id",
        {"s": source},
    )


def test_only_changed_keys_are_written_among_live_rows_of_the_same_days(wh: Warehouse) -> None:
    # Live rows of another source on the same days, with the same events and numbers, are
    # not this run's: they neither hide a change nor get touched.
    sheets = [sale(DAY + timedelta(days=d), "7", 2, "100.00") for d in range(3)]
    load(wh, SALES, sheets, Scope(equals={"source": ["qtickets_sheets"]}))
    api = [sale(DAY + timedelta(days=d), "7", 2, "100.00", "qtickets_api") for d in range(3)]

    first = load(wh, SALES, api, API)
    again = load(wh, SALES, api, API)
    api[1] = sale(DAY + timedelta(days=1), "7", 3, "150.00", "qtickets_api")
    changed = load(wh, SALES, api, API)

    assert (first.upserted, first.retracted) == (3, 0)
    assert (again.upserted, again.retracted) == (0, 0)
    assert (changed.upserted, changed.retracted) == (1, 0)
    assert live(wh, "qtickets_api")[1] == (DAY + timedelta(days=1), "7", 3, Decimal("150.00"))
    assert live(wh, "qtickets_sheets") == [
        (DAY + timedelta(days=d), "7", 2, Decimal("100.00")) for d in range(3)
    ]


def test_a_key_back_with_the_numbers_it_had_before_its_retraction_is_written(
    wh: Warehouse,
) -> None:
    rows = [sale(DAY, "7", 2, "100.00", "qtickets_api"), sale(DAY, "8", 1, "50.00", "qtickets_api")]
    load(wh, SALES, rows, API)
    gone = load(wh, SALES, rows[:1], API)
    back = load(wh, SALES, rows, API)

    assert (gone.upserted, gone.retracted) == (0, 1)
    assert (back.upserted, back.retracted) == (1, 0)
    assert [r[1] for r in live(wh, "qtickets_api")] == ["7", "8"]


def test_a_fact_without_dates_compares_by_key(wh: Warehouse) -> None:
    scope = Scope(equals={"source": ["qtickets_api"]})
    rows = [event("7", DAY, "москва", "qtickets_api"), event("8", None, "казань", "qtickets_api")]

    first = load(wh, EVENTS, rows, scope)
    again = load(wh, EVENTS, rows, scope)
    rows[1] = event("8", None, "казань", "qtickets_api", name="Новое имя")
    changed = load(wh, EVENTS, rows, scope)

    assert (first.upserted, again.upserted, changed.upserted) == (2, 0, 1)
