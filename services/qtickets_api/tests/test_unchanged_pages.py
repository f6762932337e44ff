"""Pages of orders unchanged since the last run are not read again, and nothing changes for it."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from qtickets_support import Sandbox, expected_sales, live_baskets, run, view_sales
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import SALES
from zakaz_common.load import Scope, publish, stage
from zakaz_common.timeutil import today_msk

DAYS_BACK = 30
#: What a run reports about its orders; a skipped page must leave every one of them as it was.
ORDER_COUNTS = (
    "orders",
    "orders_rejected",
    "orders_unpaid",
    "orders_cancelled",
    "orders_refunded",
    "orders_outside_window",
    "sales_rows",
    "sales_keys",
    "tickets_sold",
    "revenue",
)


def window() -> tuple[date, date]:
    today = today_msk()
    return today - timedelta(days=DAYS_BACK - 1), today


def order_counts(counts: dict[str, Any]) -> dict[str, Any]:
    return {k: counts.get(k, 0) for k in ORDER_COUNTS}


def test_an_unchanged_rerun_decodes_only_the_page_with_a_reject(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    first = run(wh)
    before = view_sales(wh)

    again = run(wh)

    assert first.counts["pages_unchanged"] == 0
    assert first.counts["order_pages"] >= 2
    # The page holding the gift certificate (a reject) gets no mark: it is read every time,
    # so its reject is recorded every time too.
    assert again.counts["pages_unchanged"] == again.counts["order_pages"] - 1
    assert again.counts["orders_rejected"] == 1
    assert order_counts(again.counts) == order_counts(first.counts)
    assert view_sales(wh) == before
    assert (again.counts["sales_upserted"], again.counts["sales_retracted"]) == (0, 0)
    assert (again.counts["sales_utm_upserted"], again.counts["sales_utm_retracted"]) == (0, 0)
    utm = "SELECT sum(tickets_sold), sum(revenue), count() FROM fact_qtickets_sales_utm_daily FINAL"
    assert wh.rows(utm + " WHERE _deleted = 0")[0][2] > 0


def test_a_refund_rereads_its_page_and_the_result_equals_the_upstream(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    run(wh)
    run(wh)  # every clean page now has a mark
    refund = next(
        o for o in qt_env.orders() if o["payed"] and o["deleted_at"] is None and live_baskets(o)
    )

    qt_env.control(f"orders/{refund['id']}/refund")
    summary = run(wh)

    assert 0 < summary.counts["pages_unchanged"] < summary.counts["order_pages"] - 1
    assert summary.counts["sales_upserted"] + summary.counts["sales_retracted"] >= 1
    assert {k: v[:2] for k, v in view_sales(wh).items()} == expected_sales(
        qt_env.orders(), *window()
    )


def test_a_dry_run_reads_every_page_and_leaves_no_marks(wh: Warehouse, qt_env: Sandbox) -> None:
    run(wh)
    marks = wh.scalar("SELECT count() FROM meta_page_marks")

    dry = run(wh, dry_run=True)

    assert dry.counts["pages_unchanged"] == 0
    assert wh.scalar("SELECT count() FROM meta_page_marks") == marks > 0


def test_another_window_does_not_use_the_marks_of_this_one(wh: Warehouse, qt_env: Sandbox) -> None:
    run(wh)
    since, to = window()

    narrow = run(wh, since=to - timedelta(days=6), to=to)

    assert narrow.counts["pages_unchanged"] == 0
    assert since < to - timedelta(days=6)


def recent() -> dict[str, date]:
    """A window without the gift certificate (paid three days ago, a reject)."""
    today = today_msk()
    return {"since": today - timedelta(days=2), "to": today}


def test_when_nothing_changed_the_last_publish_stands_and_nothing_is_staged(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    first = run(wh, **recent())
    before = view_sales(wh)

    again = run(wh, **recent())

    assert first.counts["orders_rejected"] == 0 and first.counts["sales_rows"] > 0
    assert again.counts["pages_unchanged"] == again.counts["order_pages"]
    assert again.counts["sales_unchanged_since"] == first.run_id
    assert order_counts(again.counts) == order_counts(first.counts)
    assert view_sales(wh) == before
    staged = "SELECT count() FROM stg_qtickets_sales WHERE run_id = {r:String}"
    assert wh.scalar(staged, {"r": again.run_id}) == 0
    # The next run still finds the marks (of the run whose rows are staged) and skips again.
    third = run(wh, **recent())
    assert third.counts["sales_unchanged_since"] == first.run_id


def test_a_foreign_write_into_the_window_is_repaired_even_if_upstream_did_not_change(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    run(wh, **recent())
    before = view_sales(wh)
    key = next(iter(before))
    time.sleep(1.1)  # fact and mark times are whole seconds
    stage(
        wh,
        SALES,
        "intruder",
        [
            {
                "source": "qtickets_api",
                "sale_date": key[0],
                "event_id": key[1],
                "event_name": "",
                "city": "",
                "tickets_sold": 999,
                "revenue": Decimal("1.00"),
            }
        ],
        int(time.time()),
    )
    publish(wh, SALES, "intruder", Scope(equals={"source": ["qtickets_api"]}), retract=False)
    assert (
        wh.scalar(
            "SELECT tickets_sold FROM fact_qtickets_sales_daily FINAL WHERE event_id = {e:String} "
            "AND sale_date = {d:Date} AND source = 'qtickets_api'",
            {"e": key[1], "d": key[0]},
        )
        == 999
    )

    again = run(wh, **recent())

    assert again.counts["pages_unchanged"] == again.counts["order_pages"]
    assert again.counts["sales_unchanged_since"] == ""
    assert again.counts["sales_upserted"] == 1
    assert view_sales(wh) == before
