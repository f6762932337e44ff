"""The BI views' rules (CONTRACT §4), with fact rows loaded through stage → publish."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from factrows import direct_row, event, load, sale, vk_row
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import DIRECT, EVENTS, INVENTORY, SALES, VK_ADS
from zakaz_common.load import PublishResult, Scope
from zakaz_common.marts import refresh_marts
from zakaz_common.runs import record_run
from zakaz_common.timeutil import today_msk

VK = VK_ADS

SHEETS = Scope(equals={"source": ["qtickets_sheets"]})
API = Scope(equals={"source": ["qtickets_api"]})
GMAIL = Scope(equals={"source": ["gmail"]})
D1, D2, D3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)


def sales_view(
    wh: Warehouse, view: str = "v_sales_latest"
) -> dict[tuple[date, str], dict[str, Any]]:
    rows = wh.dicts(f"SELECT * FROM {view}")
    keyed = {(r["sale_date"], r["event_id"]): r for r in rows}
    assert len(keyed) == len(rows), "the view returned a key twice"
    return keyed


def test_sales_come_from_the_highest_priority_source_and_are_never_summed(wh: Warehouse) -> None:
    load(
        wh,
        SALES,
        [
            sale(D1, "1", 5, "5000", "gmail"),
            sale(D1, "2", 4, "400", "gmail"),
            sale(D1, "3", 1, "10", "gmail"),
        ],
        GMAIL,
    )
    load(
        wh,
        SALES,
        [sale(D1, "1", 3, "3000", "qtickets_api"), sale(D1, "2", 2, "200", "qtickets_api")],
        API,
    )
    load(wh, SALES, [sale(D1, "1", 2, "2000.50", "qtickets_sheets")], SHEETS)

    view = sales_view(wh)

    assert {k: (v["source"], v["tickets_sold"], v["revenue"]) for k, v in view.items()} == {
        (D1, "1"): ("qtickets_sheets", 2, Decimal("2000.50")),
        (D1, "2"): ("qtickets_api", 2, Decimal("200.00")),
        (D1, "3"): ("gmail", 1, Decimal("10.00")),
    }


def test_rows_of_one_key_in_one_load_add_up(wh: Warehouse) -> None:
    load(
        wh,
        SALES,
        [sale(D1, "1", 1, "100"), sale(D1, "1", 1, "100"), sale(D1, "1", 2, "250.25")],
        SHEETS,
    )

    assert sales_view(wh)[(D1, "1")]["tickets_sold"] == 4
    assert sales_view(wh)[(D1, "1")]["revenue"] == Decimal("450.25")


def test_rerunning_a_load_writes_nothing_and_duplicates_nothing(wh: Warehouse) -> None:
    rows = [sale(D1, "1", 2, "200"), sale(D2, "1", 1, "100"), sale(D2, "2", 7, "700")]
    first = load(wh, SALES, rows, SHEETS)
    again = [load(wh, SALES, rows, SHEETS) for _ in range(3)]

    assert first.upserted == 3
    assert all(r.written == 0 for r in again)
    assert wh.scalar("SELECT count() FROM fact_qtickets_sales_daily") == 3
    assert len(sales_view(wh)) == 3


def test_unmerged_versions_and_exact_duplicate_inserts_show_once_with_the_newest_values(
    wh: Warehouse,
) -> None:
    cols = [
        "sale_date",
        "event_id",
        "source",
        "event_name",
        "city",
        "tickets_sold",
        "revenue",
        "row_hash",
        "run_id",
        "loaded_at",
        "_ver",
        "_deleted",
    ]
    base = [D1, "9", "qtickets_api", "Шоу", "казань"]
    rows = [
        (*base, 1, Decimal("100"), 1, "a", 0, 1, 0),
        (*base, 1, Decimal("100"), 1, "a", 0, 1, 0),
        (*base, 3, Decimal("300"), 2, "b", 0, 2, 0),
    ]
    for row in rows:  # three separate inserts: three parts, nothing merged yet
        wh.insert("fact_qtickets_sales_daily", [row], cols)

    view = sales_view(wh)

    assert view[(D1, "9")]["tickets_sold"] == 3
    assert view[(D1, "9")]["revenue"] == Decimal("300.00")


def test_a_reload_replaces_its_window_and_leaves_the_rest(wh: Warehouse) -> None:
    load(
        wh,
        SALES,
        [
            sale(D1, "1", 1, "100"),
            sale(D2, "1", 2, "200"),
            sale(D2, "2", 3, "300"),
            sale(D3, "1", 4, "400"),
        ],
        SHEETS,
    )

    # Upstream now: day 2 lost event 2 and changed event 1; day 1 is outside the reload window.
    result = load(
        wh,
        SALES,
        [sale(D2, "1", 5, "555"), sale(D3, "1", 4, "400")],
        Scope(equals={"source": ["qtickets_sheets"]}, since=D2, to=D3),
    )

    view = sales_view(wh)
    assert result == PublishResult(upserted=1, retracted=1)
    assert set(view) == {(D1, "1"), (D2, "1"), (D3, "1")}
    assert view[(D2, "1")]["revenue"] == Decimal("555.00")


def test_a_retracted_key_comes_back_when_upstream_has_it_again(wh: Warehouse) -> None:
    load(wh, SALES, [sale(D1, "1", 1, "100"), sale(D1, "2", 1, "100")], SHEETS)
    load(wh, SALES, [sale(D1, "1", 1, "100")], SHEETS)
    assert set(sales_view(wh)) == {(D1, "1")}

    load(wh, SALES, [sale(D1, "1", 1, "100"), sale(D1, "2", 1, "100")], SHEETS)

    assert set(sales_view(wh)) == {(D1, "1"), (D1, "2")}


def test_a_reload_of_one_source_never_retracts_another_sources_keys(wh: Warehouse) -> None:
    load(wh, SALES, [sale(D1, "1", 1, "100", "qtickets_api")], API)
    load(wh, SALES, [sale(D1, "2", 1, "100")], SHEETS)
    load(wh, SALES, [], SHEETS)

    assert {k: v["source"] for k, v in sales_view(wh).items()} == {(D1, "1"): "qtickets_api"}


def test_when_the_priority_source_retracts_a_key_the_next_source_shows(wh: Warehouse) -> None:
    load(wh, SALES, [sale(D1, "1", 3, "300", "qtickets_api")], API)
    load(wh, SALES, [sale(D1, "1", 2, "200")], SHEETS)
    assert sales_view(wh)[(D1, "1")]["source"] == "qtickets_sheets"

    load(wh, SALES, [], SHEETS)

    assert sales_view(wh)[(D1, "1")]["source"] == "qtickets_api"
    assert sales_view(wh)[(D1, "1")]["tickets_sold"] == 3


def test_sales_take_event_name_date_and_city_from_dim_events(wh: Warehouse) -> None:
    load(
        wh, EVENTS, [event("1", date(2025, 7, 1), "санкт-петербург", name="Лекция о ёлках")], SHEETS
    )
    load(
        wh,
        EVENTS,
        [
            event("1", date(2025, 7, 2), "москва", "qtickets_api"),
            event("2", date(2025, 8, 1), "казань", "qtickets_api", name="Стендап"),
        ],
        API,
    )
    load(
        wh,
        SALES,
        [
            sale(D1, "1", 1, "100", city="москва"),
            sale(D1, "2", 1, "100", city=""),
            sale(D1, "3", 1, "100", city="омск", name="Без события"),
        ],
        SHEETS,
    )

    view = sales_view(wh)

    assert (
        view[(D1, "1")]["event_name"],
        view[(D1, "1")]["event_date"],
        view[(D1, "1")]["city"],
    ) == ("Лекция о ёлках", date(2025, 7, 1), "санкт-петербург")
    assert (view[(D1, "2")]["event_name"], view[(D1, "2")]["city"]) == ("Стендап", "казань")
    assert (
        view[(D1, "3")]["event_name"],
        view[(D1, "3")]["event_date"],
        view[(D1, "3")]["city"],
    ) == ("Без события", None, "омск")


def test_dim_events_has_one_row_per_event_filling_gaps_from_lower_priority(wh: Warehouse) -> None:
    load(wh, EVENTS, [event("1", None, "москва", name="Из таблицы")], SHEETS)
    load(
        wh,
        EVENTS,
        [event("1", date(2025, 9, 9), "санкт-петербург", "qtickets_api", name="Из API")],
        API,
    )

    rows = wh.dicts("SELECT event_id, event_name, event_date, city, source FROM dim_events")

    assert rows == [
        {
            "event_id": "1",
            "event_name": "Из таблицы",
            "event_date": date(2025, 9, 9),
            "city": "москва",
            "source": "qtickets_sheets",
        }
    ]


def test_sales_14d_covers_today_and_the_13_days_before(wh: Warehouse) -> None:
    today = today_msk()
    days = [
        today,
        today - timedelta(days=13),
        today - timedelta(days=14),
        today + timedelta(days=1),
    ]
    load(wh, SALES, [sale(d, "1", 1, "10") for d in days], SHEETS)

    assert {d for d, _ in sales_view(wh, "v_sales_14d")} == {today, today - timedelta(days=13)}
    # The mart keeps one day more, so after midnight (before the next run refreshes it) the
    # view still has the day that has just become the 14th.
    assert wh.scalar("SELECT min(sale_date) FROM mart_sales_14d") == today - timedelta(days=14)


@pytest.mark.parametrize(
    ("revenue", "spend", "romi", "colour"),
    [
        ("99.00", "100.00", 0.99, "red"),
        ("100.00", "100.00", 1.0, "yellow"),
        ("150.00", "100.00", 1.5, "yellow"),
        ("151.00", "100.00", 1.51, "green"),
        ("0.00", "100.00", 0.0, "red"),
        ("500.00", "0.00", None, "grey"),
    ],
    ids=[
        "0.99_red",
        "1_yellow",
        "1.5_yellow_inclusive",
        "1.51_green",
        "no_sales_red",
        "no_spend_grey",
    ],
)
def test_romi_and_its_colour(
    wh: Warehouse, revenue: str, spend: str, romi: float | None, colour: str
) -> None:
    show = date(2025, 7, 1)
    load(wh, EVENTS, [event("1", show, "москва")], SHEETS)
    load(wh, SALES, [sale(D1, "1", 3, revenue)], SHEETS)
    if Decimal(spend):
        half = Decimal(spend) / 2
        load(
            wh,
            VK,
            [vk_row(D1, "b1", str(half), "москва", show)],
            Scope(equals={"account": ["main"]}),
        )
        load(
            wh,
            DIRECT,
            [direct_row(D1, "a1", str(half), "москва", show)],
            Scope(equals={"account": ["client"]}),
        )

    rows = wh.dicts("SELECT * FROM v_romi_kpi")

    assert len(rows) == 1
    row = rows[0]
    assert (row["city"], row["event_date"], row["tickets_sold"]) == ("москва", show, 3)
    assert row["revenue"] == Decimal(revenue)
    assert row["spend"] == Decimal(spend)
    assert row["spend_vk"] + row["spend_direct"] == row["spend"]
    assert row["romi"] == romi
    assert row["romi_color"] == colour


def test_romi_is_unrounded(wh: Warehouse) -> None:
    show = date(2025, 7, 1)
    load(wh, EVENTS, [event("1", show, "казань")], SHEETS)
    load(wh, SALES, [sale(D1, "1", 1, "100")], SHEETS)
    load(wh, VK, [vk_row(D1, "b1", "30", "казань", show)], Scope())

    assert wh.scalar("SELECT romi FROM v_romi_kpi") == 100 / 30


def test_romi_rows_come_from_sales_or_parsed_spend_never_unparsed_spend(wh: Warehouse) -> None:
    show_a, show_b = date(2025, 7, 1), date(2025, 7, 5)
    load(wh, EVENTS, [event("1", show_a, "москва")], SHEETS)
    load(wh, SALES, [sale(D1, "1", 2, "1000")], SHEETS)
    load(
        wh,
        VK,
        [
            vk_row(D1, "b1", "100", "москва", show_a),
            vk_row(D1, "b2", "40", "казань", show_b),
            vk_row(D1, "b3", "999", "", None),
        ],
        Scope(),
    )

    rows = {(r["city"], r["event_date"]): r for r in wh.dicts("SELECT * FROM v_romi_kpi")}

    assert set(rows) == {("москва", show_a), ("казань", show_b)}
    assert rows[("казань", show_b)]["tickets_sold"] == 0
    assert rows[("казань", show_b)]["romi"] == 0.0
    assert rows[("москва", show_a)]["spend_vk"] == Decimal("100.00")
    assert rows[("москва", show_a)]["spend_direct"] == Decimal("0.00")


def test_marketing_daily_sums_per_show_and_keeps_unparsed_spend_with_empty_city(
    wh: Warehouse,
) -> None:
    show = date(2025, 7, 1)
    load(
        wh,
        VK,
        [
            vk_row(D1, "b1", "10.10", "москва", show),
            vk_row(D1, "b2", "20.20", "москва", show),
            vk_row(D1, "b3", "5.55", "", None),
            vk_row(D1, "b4", "0", "омск", show, impressions=0, clicks=0),
        ],
        Scope(),
    )
    load(wh, DIRECT, [direct_row(D1, "a1", "7.00", "москва", show)], Scope())

    rows = {
        (r["platform"], r["city"], r["event_date"]): r
        for r in wh.dicts("SELECT * FROM v_marketing_daily")
    }

    assert set(rows) == {("vk", "москва", show), ("vk", "", None), ("direct", "москва", show)}
    assert rows[("vk", "москва", show)]["spend"] == Decimal("30.30")
    assert rows[("vk", "москва", show)]["impressions"] == 2000
    assert rows[("vk", "", None)]["spend"] == Decimal("5.55")


def test_campaign_performance_ctr_and_cpc_with_null_divisors(wh: Warehouse) -> None:
    load(
        wh,
        VK,
        [
            vk_row(D1, "b1", "10", "москва", None, plan="p1", impressions=300, clicks=7),
            vk_row(D1, "b2", "5", "москва", None, plan="p1", impressions=0, clicks=0),
            vk_row(D1, "b3", "0", "москва", None, plan="p2", impressions=0, clicks=0),
            vk_row(D1, "b4", "3", "москва", None, plan="p3", impressions=50, clicks=0),
        ],
        Scope(),
    )

    rows = {
        r["campaign_id"]: r
        for r in wh.dicts("SELECT * FROM v_campaign_performance WHERE platform = 'vk'")
    }

    assert rows["p1"]["ctr"] == 7 / 300
    assert rows["p1"]["cpc"] == 15 / 7
    assert rows["p1"]["campaign_name"] == "План p1"
    assert rows["p2"]["ctr"] is None and rows["p2"]["cpc"] is None
    assert rows["p3"]["ctr"] == 0.0 and rows["p3"]["cpc"] is None


def test_ad_reload_of_a_day_replaces_it(wh: Warehouse) -> None:
    load(
        wh,
        VK,
        [
            vk_row(D1, "b1", "10", "москва", None),
            vk_row(D1, "b2", "20", "москва", None),
            vk_row(D2, "b1", "30", "москва", None),
        ],
        Scope(equals={"account": ["main"]}),
    )
    load(
        wh,
        VK,
        [vk_row(D1, "b1", "11", "москва", None)],
        Scope(equals={"account": ["main"]}, since=D1, to=D1),
    )

    totals = dict(wh.rows("SELECT stat_date, sum(spend) FROM v_marketing_daily GROUP BY stat_date"))

    assert totals == {D1: Decimal("11.00"), D2: Decimal("30.00")}


def test_inventory_prefers_sheets_and_joins_event_details(wh: Warehouse) -> None:
    ts = int(time.time())
    load(wh, EVENTS, [event("1", date(2025, 7, 1), "москва", name="Шоу А")], SHEETS)
    inv = [
        {
            "source": "qtickets_api",
            "event_id": "1",
            "event_name": "",
            "event_date": None,
            "city": "",
            "tickets_total": 500,
            "tickets_left": 120,
            "updated_at": ts,
        },
        {
            "source": "qtickets_api",
            "event_id": "2",
            "event_name": "Шоу Б",
            "event_date": date(2025, 8, 1),
            "city": "казань",
            "tickets_total": 200,
            "tickets_left": 57,
            "updated_at": ts,
        },
    ]
    load(wh, INVENTORY, inv, API)
    load(
        wh,
        INVENTORY,
        [{**inv[0], "source": "qtickets_sheets", "tickets_total": 510, "tickets_left": 100}],
        SHEETS,
    )

    rows = {r["event_id"]: r for r in wh.dicts("SELECT * FROM v_inventory")}

    assert (
        rows["1"]["event_name"],
        rows["1"]["city"],
        rows["1"]["tickets_total"],
        rows["1"]["tickets_left"],
    ) == ("Шоу А", "москва", 510, 100)
    assert (rows["2"]["event_name"], rows["2"]["event_date"], rows["2"]["tickets_left"]) == (
        "Шоу Б",
        date(2025, 8, 1),
        57,
    )


def test_data_freshness_has_every_source_with_days_behind_in_moscow_days(wh: Warehouse) -> None:
    today = today_msk()
    now = time.time()
    load(wh, SALES, [sale(today - timedelta(days=3), "1", 1, "10")], SHEETS)
    load(wh, VK, [vk_row(today - timedelta(days=1), "b1", "1", "", None)], Scope())
    record_run(
        wh,
        run_id="r1",
        job="qtickets_sheets",
        status="success",
        started_at=now - 60,
        finished_at=now - 50,
    )
    record_run(
        wh, run_id="r2", job="vk_ads", status="success", started_at=now - 600, finished_at=now - 590
    )
    record_run(
        wh,
        run_id="r3",
        job="vk_ads",
        status="error",
        started_at=now - 30,
        finished_at=now - 20,
        message="VK answered 401 invalid_token",
    )
    record_run(wh, run_id="r4", job="direct", status="dry_run", started_at=now, finished_at=now)
    refresh_marts(wh)  # what `execute` does once a run's outcome is recorded

    rows = {r["source"]: r for r in wh.dicts("SELECT * FROM v_data_freshness")}

    assert set(rows) == {"qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail"}
    sheets, vk, direct = rows["qtickets_sheets"], rows["vk_ads"], rows["direct"]
    assert (
        sheets["last_data_date"],
        sheets["days_behind"],
        sheets["last_status"],
        sheets["last_error"],
    ) == (today - timedelta(days=3), 3, "success", "")
    assert sheets["last_success_at"] is not None
    assert (vk["days_behind"], vk["last_status"], vk["last_error"]) == (
        1,
        "error",
        "VK answered 401 invalid_token",
    )
    assert vk["last_success_at"] is not None
    assert (direct["last_status"], direct["last_success_at"], direct["days_behind"]) == (
        None,
        None,
        None,
    )
    assert rows["gmail"]["last_data_date"] is None


def test_a_run_row_rewritten_through_its_statuses_is_one_run(wh: Warehouse) -> None:
    now = time.time()
    for status in ("queued", "running", "success"):
        record_run(
            wh,
            run_id="r1",
            job="gmail",
            status=status,
            started_at=now,
            finished_at=now + 1 if status == "success" else None,
            rows_processed=5,
            metrics={"duration_ms": 1000},
        )

    rows = wh.dicts("SELECT status, metrics FROM meta_job_runs WHERE run_id = 'r1'")

    assert [r["status"] for r in rows] == ["success"]
    assert json.loads(rows[0]["metrics"])["duration_ms"] == 1000


def test_romi_and_freshness_follow_the_last_refresh_only(wh: Warehouse) -> None:
    show = date(2025, 7, 1)
    load(wh, EVENTS, [event("1", show, "москва")], SHEETS)
    load(wh, SALES, [sale(D1, "1", 1, "100")], SHEETS)
    load(wh, SALES, [sale(D1, "1", 2, "300")], SHEETS)

    assert wh.rows("SELECT tickets_sold, revenue FROM v_romi_kpi") == [(2, Decimal("300.00"))]
    assert wh.scalar("SELECT count() FROM mart_romi_kpi") == 1
    scratch = "SELECT count() FROM system.tables WHERE database = {db:String} AND name LIKE 'mart\\_%\\_\\_%'"
    assert wh.scalar(scratch, {"db": wh.database}) == 0  # every scratch table was dropped
    assert (
        wh.scalar("SELECT last_data_date FROM v_data_freshness WHERE source = 'qtickets_sheets'")
        == D1
    )
