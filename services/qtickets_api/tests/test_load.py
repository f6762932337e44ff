"""Integration: the real client against the sandbox over HTTP, into the embedded warehouse,
checked through the BI views to the kopeck."""

from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from qtickets_support import (
    Sandbox,
    expected_sales,
    live_baskets,
    moscow_date,
    run,
    sold_and_held,
    string_values,
    view_sales,
)
from typer.testing import CliRunner
from zakaz_common.alerts import open_alerts
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import SALES
from zakaz_common.load import Scope, publish, stage
from zakaz_common.runs import get_run
from zakaz_common.timeutil import today_msk
from zakaz_sandbox.qtickets_data import LATE_EVENT_ID, SANDBOX_TOKEN
from zakaz_sandbox.season import season

DAYS_BACK = 30


def window() -> tuple[date, date]:
    today = today_msk()
    return today - timedelta(days=DAYS_BACK - 1), today


def fact_counts(wh: Warehouse) -> dict[str, int]:
    tables = [
        t
        for (t,) in wh.rows(
            "SELECT name FROM system.tables WHERE database = {db:String} AND engine != 'View' "
            "AND name NOT IN ('meta_job_runs_log', 'schema_migrations', 'dim_city')",
            {"db": wh.database},
        )
    ]
    return {t: int(wh.scalar(f"SELECT count() FROM `{t}`")) for t in tables}


def inventory(wh: Warehouse) -> dict[str, tuple[int, int]]:
    return {
        e: (int(t), int(left))
        for e, t, left in wh.rows("SELECT event_id, tickets_total, tickets_left FROM v_inventory")
    }


def test_sales_land_in_v_sales_latest_to_the_kopeck(wh: Warehouse, qt_env: Sandbox) -> None:
    summary = run(wh)

    assert summary.status == "success", summary.message
    expected = expected_sales(qt_env.orders(), *window())
    got = view_sales(wh)
    assert {k: v[:2] for k, v in got.items()} == expected
    assert {v[2] for v in got.values()} == {"qtickets_api"}
    total = sum((v[1] for v in expected.values()), Decimal("0.00"))
    assert wh.scalar("SELECT sum(revenue) FROM v_sales_latest") == total
    assert summary.counts["revenue"] == str(total)
    assert any(v[1] != v[1].to_integral_value() for v in expected.values())  # kopecks present


def test_refunded_cancelled_and_unpaid_orders_are_not_sold(wh: Warehouse, qt_env: Sandbox) -> None:
    orders = qt_env.orders()
    paid_everything: dict[tuple[date, str], Decimal] = {}
    for order in orders:
        if order["payed_at"] and order["event_id"] is not None:
            key = (moscow_date(order["payed_at"]), str(order["event_id"]))
            total = sum((Decimal(str(b["price"])) for b in order["baskets"]), Decimal(0))
            paid_everything[key] = paid_everything.get(key, Decimal(0)) + total
    refunded = [o for o in orders if o["payed"] and any(b["refunded_at"] for b in o["baskets"])]
    cancelled = [o for o in orders if o["deleted_at"] is not None]
    unpaid = [o for o in orders if not o["payed"]]
    assert refunded and cancelled and unpaid

    summary = run(wh)

    sold = sum((v[1] for v in view_sales(wh).values()), Decimal(0))
    refunded_money = sum(
        (Decimal(str(b["price"])) for o in refunded for b in o["baskets"] if b["refunded_at"]),
        Decimal(0),
    )
    assert refunded_money > 0
    assert sold < sum(paid_everything.values())
    assert summary.counts["orders_refunded"] == sum(1 for o in refunded if not live_baskets(o))
    assert summary.counts["orders_cancelled"] == sum(1 for o in cancelled if o["payed"])
    assert summary.counts["orders_rejected"] == 1  # the gift certificate has no event


def test_an_order_paid_at_2330_utc_counts_on_the_next_moscow_day(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    late_id = qt_env.special("late")
    late = next(o for o in qt_env.orders() if o["id"] == late_id)
    assert late["payed_at"].endswith("T23:30:00+00:00")
    utc_day = date.fromisoformat(late["payed_at"][:10])

    run(wh)

    sales = view_sales(wh)
    event = str(LATE_EVENT_ID)
    assert sales[(utc_day + timedelta(days=1), event)] == (2, Decimal("2666.67"), "qtickets_api")
    assert (utc_day, event) not in sales


def test_v_inventory_is_right_for_seated_and_general_admission_shows(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    paid, held = sold_and_held(qt_env.orders())

    run(wh)

    got = inventory(wh)
    expected = {}
    for show in season():
        shows = [show.show_id] + ([152890] if show.event_id == 24080 else [])
        if show.seated:
            # Two seats hold the sound desk (disabled); four are held back by the organiser
            # (not available): in the total, never left.
            total = (show.capacity - 2) * len(shows)
            left = total - 4 * len(shows)
        else:
            total = left = show.capacity  # the Kazan show deleted earlier adds nothing
        left -= sum(paid[s] + held[s] for s in shows)
        expected[str(show.event_id)] = (total, left)
    assert got == expected
    assert got["24080"][0] == 2396 and got["24083"][0] == 500
    rows = wh.dicts("SELECT * FROM v_inventory WHERE event_id = '24082'")
    assert (
        rows[0]["city"] == "екатеринбург" and rows[0]["event_name"] == "Лекция «Ёлки и их история»"
    )


def test_dim_events_has_names_first_show_dates_and_canonical_cities(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    run(wh)

    events = {r["event_id"]: r for r in wh.dicts("SELECT * FROM dim_events")}
    shows = {s.event_id: s for s in season()}
    assert set(events) == {str(e) for e in shows}
    for event_id, show in shows.items():
        row = events[str(event_id)]
        assert (row["event_name"], row["event_date"], row["city"]) == (
            show.name,
            show.show_date,
            show.city,
        )
    # The deleted earlier Kazan show does not move the date; the lecture's "москва " is canonical.
    assert events["24083"]["event_date"] == shows[24083].show_date
    assert events["24087"]["city"] == "москва"


def test_sales_by_utm_add_up_to_the_sales(wh: Warehouse, qt_env: Sandbox) -> None:
    run(wh)

    by_key = dict(
        (
            (d, e),
            (int(t), r),
        )
        for d, e, t, r in wh.rows(
            "SELECT sale_date, event_id, sum(tickets_sold), sum(revenue) "
            "FROM fact_qtickets_sales_utm_daily FINAL GROUP BY sale_date, event_id"
        )
    )
    assert by_key == {k: v[:2] for k, v in view_sales(wh).items()}
    late = wh.dicts(
        "SELECT * FROM fact_qtickets_sales_utm_daily FINAL WHERE event_id = {e:String}",
        {"e": str(LATE_EVENT_ID)},
    )
    vk = [r for r in late if r["utm_source"] == "vk" and r["utm_content"].startswith("nnov_")]
    assert any(r["revenue"] == Decimal("2666.67") and r["utm_campaign"] == "" for r in vk)
    sources = {
        s for (s,) in wh.rows("SELECT DISTINCT utm_source FROM fact_qtickets_sales_utm_daily")
    }
    assert {"", "vk", "yandex"} <= sources


def test_no_pii_in_any_table_or_log(
    wh: Warehouse, qt_env: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # The server hands the client every field it has; the client must drop PII itself.
    qt_env.control("config", {"ignore_select": True})
    caplog.set_level(logging.DEBUG)
    refund = next(o for o in qt_env.orders() if o["payed"] and live_baskets(o))
    pii = qt_env.pii()
    assert len(pii) > 300

    # Seat maps without select have no counters, so every one fails and so does the run; the
    # orders it staged, with every field the server sent, are searched below.
    ignoring = run(wh)
    assert ignoring.status == "error" and "all 9 seat maps" in ignoring.message
    qt_env.control("config", {"ignore_select": False})
    assert run(wh).status == "success"
    qt_env.control(f"orders/{refund['id']}/refund")
    qt_env.control("faults", {"status": 500, "count": 20, "path": "/shows/152881/seats"})
    assert run(wh, days=3).status == "success"
    qt_env.control("token", {"token": "rotated-token"})
    assert run(wh).status == "error"

    leaks = {
        column: [v for v in values if any(p in v for p in pii)]
        for column, values in string_values(wh).items()
    }
    assert {c: v for c, v in leaks.items() if v} == {}
    assert wh.scalar("SELECT count() FROM rejects") >= 1  # rejects were searched too
    assert caplog.text
    assert [p for p in pii if p in caplog.text] == []
    assert SANDBOX_TOKEN not in caplog.text
    assert "rotated-token" not in caplog.text


def test_a_refund_after_a_first_load_disappears_on_the_next_run(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    run(wh)
    orders = qt_env.orders()
    late_id = qt_env.special("late")
    late = next(o for o in orders if o["id"] == late_id)
    late_key = (moscow_date(late["payed_at"]), str(LATE_EVENT_ID))
    several = next(
        o for o in orders if o["payed"] and o["deleted_at"] is None and len(live_baskets(o)) >= 2
    )
    key = (moscow_date(several["payed_at"]), str(several["event_id"]))
    basket = live_baskets(several)[0]
    before = view_sales(wh)
    assert late_key in before

    qt_env.control(f"orders/{late['id']}/refund")
    qt_env.control(f"orders/{several['id']}/refund", {"basket_ids": [basket["id"]]})
    summary = run(wh)

    after = view_sales(wh)
    assert late_key not in after
    assert after[key][:2] == (
        before[key][0] - basket["quantity"],
        before[key][1] - Decimal(str(basket["price"])),
    )
    assert {k: v[:2] for k, v in after.items()} == expected_sales(qt_env.orders(), *window())
    assert summary.counts["sales_retracted"] >= 1


def test_a_narrow_window_only_replaces_its_own_days(wh: Warehouse, qt_env: Sandbox) -> None:
    run(wh)
    orders = [o for o in qt_env.orders() if o["payed"] and o["deleted_at"] is None]
    by_day: dict[date, dict[str, Any]] = {}
    for order in orders:
        if live_baskets(order) and order["event_id"] is not None:
            by_day.setdefault(moscow_date(order["payed_at"]), order)
    first, second = sorted(by_day)[:2]
    for day in (first, second):
        qt_env.control(f"orders/{by_day[day]['id']}/refund")
    before = view_sales(wh)

    summary = run(wh, since=first, to=first)

    after = view_sales(wh)
    now = expected_sales(qt_env.orders(), first, first)
    assert {k: v[:2] for k, v in after.items() if k[0] == first} == now
    assert {k: v for k, v in after.items() if k[0] != first} == {
        k: v for k, v in before.items() if k[0] != first
    }
    assert (summary.counts["window_since"], summary.counts["window_to"]) == (
        first.isoformat(),
        first.isoformat(),
    )


def test_sheets_and_api_on_one_key_show_the_sheets_row(wh: Warehouse, qt_env: Sandbox) -> None:
    run(wh)
    api = view_sales(wh)
    key = sorted(api)[0]
    other = sorted(api)[1]
    sheet_row = {
        "source": "qtickets_sheets",
        "sale_date": key[0],
        "event_id": key[1],
        "event_name": "Из таблицы",
        "city": "москва",
        "tickets_sold": 77,
        "revenue": Decimal("12345.67"),
    }
    stage(wh, SALES, "sheets-run-1", [sheet_row], int(time.time()))
    publish(wh, SALES, "sheets-run-1", Scope(equals={"source": ["qtickets_sheets"]}))

    run(wh)

    sales = view_sales(wh)
    assert sales[key] == (77, Decimal("12345.67"), "qtickets_sheets")
    assert sales[other] == api[other]
    assert (
        wh.scalar(
            "SELECT count() FROM fact_qtickets_sales_daily FINAL "
            "WHERE sale_date = {d:Date} AND event_id = {e:String}",
            {"d": key[0], "e": key[1]},
        )
        == 2  # both are kept; the view picks one, never the sum
    )


def test_an_unchanged_rerun_writes_nothing_to_sales_or_events(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    run(wh)

    again = run(wh)

    assert again.status == "success"
    for name in ("events", "sales", "sales_utm"):
        assert (again.counts[f"{name}_upserted"], again.counts[f"{name}_retracted"]) == (0, 0)
    assert wh.scalar("SELECT count() FROM v_sales_latest") == again.counts["sales_keys"]


def test_a_show_whose_seats_fail_keeps_its_events_inventory(wh: Warehouse, qt_env: Sandbox) -> None:
    run(wh)
    before = inventory(wh)
    spb = next(
        o
        for o in qt_env.orders()
        if str(o["event_id"]) == "24081" and o["payed"] and live_baskets(o)
    )
    qt_env.control(f"orders/{spb['id']}/refund")
    qt_env.control("faults", {"status": 500, "count": 50, "path": "/shows/152881/seats"})

    summary = run(wh)

    assert summary.status == "success"
    assert (summary.counts["shows_failed"], summary.counts["failed_show_ids"]) == (1, ["152881"])
    run_row = get_run(wh, summary.run_id)
    assert run_row is not None and json.loads(run_row["metrics"])["shows_failed"] == 1
    assert "1 shows failed" in summary.message
    assert inventory(wh)["24081"] == before["24081"]  # the refund is not seen: kept as it was

    qt_env.clear_faults()
    run(wh)
    freed = sum(b["quantity"] for b in live_baskets(spb))
    assert inventory(wh)["24081"] == (before["24081"][0], before["24081"][1] + freed)


def test_a_dry_run_reads_and_counts_but_writes_only_its_run_row(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    before = fact_counts(wh)

    summary = run(wh, dry_run=True)

    assert summary.status == "dry_run"
    assert fact_counts(wh) == before
    counts = summary.counts
    assert counts["events"] == 8 and counts["shows_with_inventory"] == 9
    assert counts["orders"] > counts["sales_rows"] > 0
    for word in ("events", "orders", "sales rows", "shows with inventory", "nothing written"):
        assert word in summary.message
    row = get_run(wh, summary.run_id)
    assert row is not None and row["status"] == "dry_run"
    assert json.loads(row["metrics"])["sales_rows"] == counts["sales_rows"]


def test_a_bad_token_fails_the_run_loses_nothing_and_raises_an_alert(
    wh: Warehouse, qt_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(wh)
    before = view_sales(wh)
    monkeypatch.setenv("QTICKETS_TOKEN", "qt-wrong-token-9")

    summary = run(wh)

    assert summary.status == "error"
    assert "QTICKETS_TOKEN" in summary.message and "qt-wrong-token-9" not in summary.message
    assert view_sales(wh) == before
    assert [a.kind for a in open_alerts(wh, "qtickets_api")] == ["run_failed"]


def test_an_upstream_outage_fails_the_run_and_changes_nothing(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    run(wh)
    before = fact_counts(wh)
    qt_env.control("faults", {"status": 503, "count": 100, "path": "/orders", "retry_after": 0})

    summary = run(wh)

    assert summary.status == "error" and "503" in summary.message
    after = fact_counts(wh)
    assert after.pop("alerts") == before.pop("alerts") + 1
    assert after == before


def test_filters_ignored_upstream_give_the_same_sales(wh: Warehouse, qt_env: Sandbox) -> None:
    qt_env.control("config", {"ignore_filters": True})

    summary = run(wh, days=7)

    since, to = today_msk() - timedelta(days=6), today_msk()
    assert {k: v[:2] for k, v in view_sales(wh).items()} == expected_sales(
        qt_env.orders(), since, to
    )
    assert summary.counts["orders_unpaid"] > 0
    assert summary.counts["orders_outside_window"] > 0


def test_missing_settings_fail_the_run_saying_what_to_set(
    wh: Warehouse, qt_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QTICKETS_BASE_URL")

    summary = run(wh)

    assert summary.status == "error" and "QTICKETS_BASE_URL" in summary.message


def test_zakaz_run_prints_the_summary(
    qt_env: Sandbox, monkeypatch: pytest.MonkeyPatch, wh: Warehouse
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)

    dry = CliRunner().invoke(app, ["run", "qtickets_api", "--days", "7", "--dry-run"])
    real = CliRunner().invoke(app, ["run", "qtickets_api", "--days", "7"])

    assert dry.exit_code == 0, dry.output
    assert real.exit_code == 0, real.output
    summary = json.loads(real.stdout)
    assert summary["status"] == "success" and summary["source"] == "qtickets_api"
    assert summary["window_since"] == (today_msk() - timedelta(days=6)).isoformat()
    assert json.loads(dry.stdout)["status"] == "dry_run"
    assert wh.scalar("SELECT count() FROM v_sales_latest") == summary["sales_keys"]
