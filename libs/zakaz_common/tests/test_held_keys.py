"""A rejected row never deletes or shrinks a good value: publish holds back the keys it might be."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from factrows import sale
from factrows import vk_row as _vk_row
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import SALES, VK_ADS
from zakaz_common.load import (
    HELD_KEYS_LIMIT,
    HeldKeys,
    PublishResult,
    Reject,
    Scope,
    publish,
    stage,
)

DAY = date(2026, 11, 30)
SHEETS = Scope(equals={"source": ["qtickets_sheets"]}, since=DAY, to=DAY + timedelta(days=2))
_run = iter(range(10**6))


def run(
    wh: Warehouse,
    spec: Any,
    rows: list[dict[str, Any]],
    scope: Scope,
    rejects: list[Reject] = (),  # type: ignore[assignment]
) -> PublishResult:
    run_id = f"held{next(_run)}"
    stage(wh, spec, run_id, rows, int(time.time()))
    held = HeldKeys()
    for r in rejects:
        held.add(r)
    return publish(wh, spec, run_id, scope, held=held.for_fact(spec.fact))


def sales(wh: Warehouse) -> dict[tuple[date, str], tuple[int, Decimal]]:
    found = wh.rows(
        "SELECT sale_date, event_id, tickets_sold, revenue FROM fact_qtickets_sales_daily FINAL "
        "WHERE source = 'qtickets_sheets' ORDER BY sale_date, event_id"
    )
    return {(d, e): (t, r) for d, e, t, r in found}


def vk_row(day: date, banner: str, spend: str, *, account: str) -> dict[str, Any]:
    return {**_vk_row(day, banner, spend, "москва", day), "account": account}


def rejected(key: dict[str, Any] | None) -> Reject:
    return Reject("sales_row", {"tickets_sold": "-5"}, "tickets_sold: negative", key, (SALES.fact,))


GOOD = [
    sale(DAY, "7", 2, "200.00"),
    sale(DAY, "8", 1, "50.00"),
    sale(DAY + timedelta(days=1), "7", 4, "400.00"),
]


def test_a_rejected_whole_key_keeps_its_last_good_value(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    # Key (DAY, 7) now has a good row and a rejected one: neither retracted nor shrunk to 1 row.
    key = {"source": "qtickets_sheets", "sale_date": DAY, "event_id": "7"}
    result = run(wh, SALES, [sale(DAY, "7", 1, "100.00"), *GOOD[1:]], SHEETS, [rejected(key)])

    assert sales(wh)[(DAY, "7")] == (2, Decimal("200.00"))
    assert (result.upserted, result.retracted, result.held) == (0, 0, 1)
    assert result.held_dates == (DAY.isoformat(),)


def test_a_new_key_with_a_rejected_row_gets_its_readable_rows(wh: Warehouse) -> None:
    # Nothing was loaded for the key before, so there is no good value to keep.
    key = {"source": "qtickets_sheets", "sale_date": DAY, "event_id": "7"}
    result = run(wh, SALES, [sale(DAY, "7", 1, "100.00")], SHEETS, [rejected(key)])

    assert sales(wh)[(DAY, "7")] == (1, Decimal("100.00"))
    assert (result.upserted, result.held) == (1, 0)


def test_a_held_key_that_is_only_rejected_is_not_retracted(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    key = {"source": "qtickets_sheets", "sale_date": DAY, "event_id": "8"}
    result = run(wh, SALES, [GOOD[0], GOOD[2]], SHEETS, [rejected(key)])

    assert sales(wh)[(DAY, "8")] == (1, Decimal("50.00"))
    assert (result.retracted, result.held) == (0, 1)


def test_a_key_truly_gone_upstream_is_still_retracted(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    # A reject of another key holds that key only: (DAY, 8) vanished upstream and goes.
    key = {"source": "qtickets_sheets", "sale_date": DAY + timedelta(days=1), "event_id": "7"}
    result = run(wh, SALES, [GOOD[0]], SHEETS, [rejected(key)])

    assert set(sales(wh)) == {(DAY, "7"), (DAY + timedelta(days=1), "7")}
    assert (result.retracted, result.held) == (1, 1)


def test_a_partial_key_holds_every_live_key_it_might_be_from_retraction(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    # A row of event 7 whose date could not be read: every day of event 7 stays; event 8 goes.
    result = run(wh, SALES, [], SHEETS, [rejected({"source": "qtickets_sheets", "event_id": "7"})])

    assert set(sales(wh)) == {(DAY, "7"), (DAY + timedelta(days=1), "7")}
    assert (result.retracted, result.held) == (1, 2)
    assert result.held_dates == (DAY.isoformat(), (DAY + timedelta(days=1)).isoformat())


def test_a_partial_key_does_not_stop_a_changed_key_from_being_written(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    changed = [sale(DAY, "7", 3, "300.00"), *GOOD[1:]]
    result = run(wh, SALES, changed, SHEETS, [rejected({"event_id": "7"})])

    assert sales(wh)[(DAY, "7")] == (3, Decimal("300.00"))
    assert result.upserted == 1


def test_a_reject_with_no_readable_key_holds_the_whole_scope(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    result = run(wh, SALES, [GOOD[0]], SHEETS, [rejected(None)])

    assert len(sales(wh)) == 3
    assert (result.retracted, result.held) == (0, 2)


def test_a_reject_naming_another_fact_holds_nothing_here(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    other = Reject("banner", {"id": "x"}, "no id", None, (VK_ADS.fact,))
    result = run(wh, SALES, [GOOD[0]], SHEETS, [other])

    assert (result.retracted, result.held) == (2, 0)


def test_vk_statistics_revised_to_absurd_values_keep_yesterdays_spend(wh: Warehouse) -> None:
    # The reproduced case: yesterday's rows come back out of range, are rejected, and the
    # reload must not tombstone the keys it "did not see".
    scope = Scope(equals={"account": ["agency"]}, since=DAY, to=DAY)
    good = [vk_row(DAY, str(b), "1000.50", account="agency") for b in range(1, 4)]
    run(wh, VK_ADS, good, scope)
    keys = [{"account": "agency", "stat_date": DAY, "banner_id": str(b)} for b in (1, 2)]
    absurd = [Reject("banner_day", {}, "spend: too large", k, (VK_ADS.fact,)) for k in keys]
    result = run(wh, VK_ADS, [good[2]], scope, absurd)

    spend = wh.scalar("SELECT sum(spend) FROM fact_vk_ads_daily FINAL WHERE account = 'agency'")
    assert spend == Decimal("3001.50")
    assert (result.retracted, result.held) == (0, 2)


def test_past_the_limit_the_fact_is_not_published_at_all(wh: Warehouse) -> None:
    run(wh, SALES, GOOD, SHEETS)
    many = [
        rejected({"source": "qtickets_sheets", "sale_date": DAY, "event_id": str(1000 + i)})
        for i in range(HELD_KEYS_LIMIT + 1)
    ]
    result = run(wh, SALES, [sale(DAY, "9", 1, "10.00")], SHEETS, many)

    assert result.withheld
    assert (result.upserted, result.retracted) == (0, 0)
    assert set(sales(wh)) == {(DAY, "7"), (DAY, "8"), (DAY + timedelta(days=1), "7")}


@pytest.mark.parametrize("column", ["account", "stat_date", "banner_id"])
def test_held_key_text_matches_the_warehouse_rendering(wh: Warehouse, column: str) -> None:
    # Held keys are matched as text: each column type must render the same on both sides.
    scope = Scope(equals={"account": ["a"]}, since=DAY, to=DAY)
    run(wh, VK_ADS, [vk_row(DAY, "42", "10.00", account="a")], scope)
    key = {"account": "a", "stat_date": DAY, "banner_id": "42"}
    partial = {column: key[column]}
    result = run(wh, VK_ADS, [], scope, [Reject("x", {}, "bad", partial, (VK_ADS.fact,))])

    assert (result.retracted, result.held) == (0, 1)
