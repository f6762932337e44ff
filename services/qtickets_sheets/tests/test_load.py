"""Runs through the real gspread client against the sandbox into the embedded warehouse."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sheets_support import SheetsSandbox
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunRequest, RunSummary, execute
from zakaz_common.settings import CoreSettings
from zakaz_common.timeutil import today_msk
from zakaz_qtickets_sheets.manifest import MANIFEST

FACTS = ("fact_qtickets_sales_daily", "fact_qtickets_inventory_latest", "dim_events_src")


def _run(wh: Warehouse, **request: Any) -> RunSummary:
    return execute(MANIFEST, RunRequest(**request), wh=wh, core=CoreSettings())


def _sales(wh: Warehouse) -> dict[tuple[date, str], tuple[Any, ...]]:
    rows = wh.rows(
        "SELECT sale_date, event_id, event_name, event_date, city, tickets_sold, revenue, source "
        "FROM v_sales_latest"
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _snapshot(wh: Warehouse) -> dict[str, Any]:
    """Everything a reader of the warehouse sees, plus how many fact rows exist at all."""
    return {
        "sales": sorted(wh.rows("SELECT * FROM v_sales_latest")),
        "inventory": sorted(wh.rows("SELECT * FROM v_inventory")),
        "events": sorted(wh.rows("SELECT * FROM dim_events")),
        "physical_rows": [wh.scalar(f"SELECT count() FROM {fact}") for fact in FACTS],
    }


@pytest.mark.parametrize("render", ["UNFORMATTED_VALUE", "FORMATTED_VALUE"])
def test_the_views_show_the_sheet_to_the_kopeck(
    sheets_env: SheetsSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch, render: str
) -> None:
    monkeypatch.setenv("SHEETS_VALUE_RENDER", render)
    truth = sheets_env.truth()
    events = {e["event_id"]: e for e in truth["events"]}

    summary = _run(wh)

    assert summary.status == "success", summary.message
    expected_sales = {
        (date.fromisoformat(s["sale_date"]), s["event_id"]): (
            events[s["event_id"]]["event_name"],
            date.fromisoformat(events[s["event_id"]]["event_date"]),
            events[s["event_id"]]["city"],
            s["tickets_sold"],
            Decimal(s["revenue"]),
            "qtickets_sheets",
        )
        for s in truth["sales"]
    }
    assert _sales(wh) == expected_sales
    total = sum((Decimal(s["revenue"]) for s in truth["sales"]), Decimal(0))
    assert wh.scalar("SELECT sum(revenue) FROM v_sales_latest") == total
    inventory = wh.rows(
        "SELECT event_id, event_name, event_date, city, tickets_total, tickets_left FROM v_inventory"
    )
    assert sorted(inventory) == sorted(
        (
            i["event_id"],
            events[i["event_id"]]["event_name"],
            date.fromisoformat(i["event_date"]),
            i["city"],
            i["tickets_total"],
            i["tickets_left"],
        )
        for i in truth["inventory"]
    )
    assert sorted(
        wh.rows("SELECT event_id, event_name, event_date, city, source FROM dim_events")
    ) == sorted(
        (
            e["event_id"],
            e["event_name"],
            date.fromisoformat(e["event_date"]),
            e["city"],
            "qtickets_sheets",
        )
        for e in truth["events"]
    )
    rejects = wh.rows("SELECT entity, reason FROM rejects WHERE source = 'qtickets_sheets'")
    assert sorted(e for e, _ in rejects) == ["events", "inventory", "sales", "sales", "sales"]
    bad_rows = {f"{b['tab']} row {b['row']}:" for b in truth["bad_rows"]}
    assert {reason.split(": ")[0] + ":" for _, reason in rejects} == bad_rows
    assert summary.rows_rejected == 5
    assert summary.counts["api_reads"] == 2
    assert summary.counts["fact_rows_written"] == len(expected_sales) + 2 * len(events)


def test_a_rerun_of_an_unchanged_sheet_writes_no_fact_rows(
    sheets_env: SheetsSandbox, wh: Warehouse
) -> None:
    assert _run(wh).status == "success"
    before = _snapshot(wh)

    again = _run(wh)

    assert again.status == "success"
    assert again.counts["fact_rows_written"] == 0
    assert "0 fact rows written (sheet unchanged)" in again.message
    assert _snapshot(wh) == before
    metrics = json.loads(
        wh.scalar(
            "SELECT metrics FROM meta_job_runs WHERE run_id = {r:String}", {"r": again.run_id}
        )
    )
    assert metrics["fact_rows_written"] == 0


def test_rows_deleted_or_changed_upstream_change_the_views(
    sheets_env: SheetsSandbox, wh: Warehouse
) -> None:
    assert _run(wh).status == "success"
    rows_of = sheets_env.sales_rows()
    gone, changed = sorted(rows_of)[3], sorted(rows_of)[10]
    assert len(rows_of[changed]) == 1
    sheets_env.control(
        "sheets/cells", {"tab": "Sales", "cell": f"E{rows_of[changed][0]}", "value": "1 234,56 ₽"}
    )
    sheets_env.control("sheets/rows/delete", {"tab": "Sales", "rows": rows_of[gone]})

    summary = _run(wh)

    assert summary.status == "success", summary.message
    sales = _sales(wh)
    assert gone not in sales
    assert sales[changed][4] == Decimal("1234.56")
    assert len(sales) == len(rows_of) - 1
    assert (summary.counts["upserted_sales"], summary.counts["retracted_sales"]) == (1, 1)


def test_a_window_replaces_only_the_sales_of_its_dates(
    sheets_env: SheetsSandbox, wh: Warehouse
) -> None:
    assert _run(wh).status == "success"
    rows_of = sheets_env.sales_rows()
    today = today_msk()
    old = next(k for k in sorted(rows_of) if k[0] < today - timedelta(days=5))
    recent = next(k for k in sorted(rows_of) if k[0] >= today - timedelta(days=2))
    # The sheet's unreadable rows go too: a row of an event with an unreadable date would hold
    # back every key of that event from retraction (see the test below).
    bad = [b["row"] for b in sheets_env.truth()["bad_rows"] if b["tab"] == "Sales"]
    sheets_env.control(
        "sheets/rows/delete", {"tab": "Sales", "rows": rows_of[old] + rows_of[recent] + bad}
    )

    narrow = _run(wh, days=3)

    assert narrow.status == "success", narrow.message
    assert narrow.counts["window"] == f"{today - timedelta(days=2)}..{today}"
    sales = _sales(wh)
    assert recent not in sales
    assert old in sales  # outside the window: this run did not speak for it
    assert _run(wh).status == "success"
    assert old not in _sales(wh)


def test_a_row_with_an_unreadable_date_holds_back_its_events_keys_not_others(
    sheets_env: SheetsSandbox, wh: Warehouse
) -> None:
    assert _run(wh).status == "success"
    rows_of = sheets_env.sales_rows()
    [raw] = [r for (r,) in wh.rows("SELECT raw FROM rejects") if "31.02." in r]
    bad_event = str(json.loads(raw)["event_id"])
    held = sorted(k for k in rows_of if k[1] == bad_event)[0]
    other = sorted(k for k in rows_of if k[1] != bad_event)[0]
    sheets_env.control(
        "sheets/rows/delete", {"tab": "Sales", "rows": rows_of[held] + rows_of[other]}
    )

    summary = _run(wh)

    sales = _sales(wh)
    assert held in sales  # the dated-31.02 row of that event may be this very sale
    assert other not in sales  # truly gone upstream
    assert summary.counts["held_back"] >= 1
    assert held[0].isoformat() in summary.counts["held_back_dates"]
    assert any(a.kind == "held_back" for a in open_alerts(wh, "qtickets_sheets"))


def test_a_missing_header_fails_the_run_and_changes_nothing(
    sheets_env: SheetsSandbox, wh: Warehouse
) -> None:
    assert _run(wh).status == "success"
    before = _snapshot(wh)
    # An edit to another tab in the same run must not be applied either.
    sheets_env.control("sheets/cells", {"tab": "Events", "cell": "B2", "value": "Переименовано"})
    sheets_env.control("sheets/headers/remove", {"tab": "Sales", "header": "Выручка"})

    summary = _run(wh)

    assert summary.status == "error"
    assert "worksheet 'Sales'" in summary.message
    assert "no 'revenue' column (header 'revenue' or 'выручка')" in summary.message
    assert _snapshot(wh) == before
    run = wh.dicts(
        "SELECT status, message FROM meta_job_runs WHERE run_id = {r:String}",
        {"r": summary.run_id},
    )
    assert run[0]["status"] == "error" and "'revenue'" in run[0]["message"]
    assert wh.scalar("SELECT count() FROM alerts WHERE job = 'qtickets_sheets'") >= 1


def test_injected_429s_still_give_a_complete_run_within_the_quota(
    sheets_env: SheetsSandbox, wh: Warehouse
) -> None:
    sheets_env.control("sheets/faults", {"rate_limit": 4})

    summary = _run(wh)

    assert summary.status == "success", summary.message
    assert summary.counts["api_throttled"] == 4
    assert summary.counts["api_reads"] == 6
    log = sheets_env.log()
    assert [e["status"] for e in log] == [429, 429, 429, 429, 200, 200]
    assert len(_sales(wh)) == len(sheets_env.sales_rows())


def test_endless_429_fails_the_run_and_keeps_the_warehouse(
    sheets_env: SheetsSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(wh).status == "success"
    before = _snapshot(wh)
    monkeypatch.setenv("SHEETS_RETRY_ATTEMPTS", "3")
    sheets_env.control("sheets/faults", {"rate_limit": -1})

    summary = _run(wh)

    assert summary.status == "error"
    assert "quota exhausted" in summary.message
    assert _snapshot(wh) == before


def test_a_dry_run_reads_and_counts_but_writes_nothing(
    sheets_env: SheetsSandbox, wh: Warehouse
) -> None:
    summary = _run(wh, dry_run=True)

    assert summary.status == "dry_run"
    assert summary.rows_processed > 100 and summary.rows_rejected == 5
    assert [wh.scalar(f"SELECT count() FROM {fact}") for fact in FACTS] == [0, 0, 0]
    assert wh.scalar("SELECT count() FROM rejects") == 0
