"""Runs through the real client against the sandbox into the embedded warehouse."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from gmail_support import GmailSandbox, Key
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import SALES
from zakaz_common.load import Scope, publish, stage
from zakaz_common.runs import RunRequest, RunSummary, execute
from zakaz_common.settings import CoreSettings
from zakaz_common.timeutil import today_msk
from zakaz_gmail.manifest import MANIFEST


def _run(wh: Warehouse, **request: Any) -> RunSummary:
    return execute(MANIFEST, RunRequest(**request), wh=wh, core=CoreSettings())


def _sales(wh: Warehouse, source: str | None = None) -> dict[Key, tuple[Any, ...]]:
    rows = wh.rows(
        "SELECT sale_date, event_id, tickets_sold, revenue, source FROM v_sales_latest "
        "WHERE {source:String} = '' OR source = {source:String}",
        {"source": source or ""},
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _as_view(expected: dict[Key, tuple[int, Decimal, str]]) -> dict[Key, tuple[Any, ...]]:
    return {key: (tickets, revenue, "gmail") for key, (tickets, revenue, _) in expected.items()}


def test_sales_from_html_and_csv_reports_land_to_the_kopeck(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    truth = gmail_env.truth("from:qtickets")
    expected = gmail_env.expected()
    kinds = {m["id"]: m["kind"] for m in truth}

    summary = _run(wh)

    assert summary.status == "success", summary.message
    assert _sales(wh) == _as_view(expected)
    # Both message kinds are among the winners, so both were read to the kopeck.
    assert {kinds[msg] for _, _, msg in expected.values()} == {"html", "csv"}
    total = sum((revenue for _, revenue, _ in expected.values()), Decimal("0.00"))
    assert wh.scalar("SELECT sum(revenue) FROM v_sales_latest") == total
    assert summary.counts["messages_listed"] == len(truth)
    assert summary.counts["messages_with_sales"] == sum(1 for m in truth if m["readable"])
    assert summary.counts["messages_rejected"] == 1  # the Excel report
    assert summary.counts["messages_without_data"] == 1  # the announcement
    assert summary.rows_rejected == 1 + sum(m["bad_rows"] for m in truth)
    names = dict(wh.rows("SELECT DISTINCT event_id, event_name FROM v_sales_latest"))
    cities = dict(wh.rows("SELECT DISTINCT event_id, city FROM v_sales_latest"))
    for message in truth:
        for sale in message["sales"]:
            assert names[sale["event_id"]] == sale["event_name"]
            assert cities[sale["event_id"]] == sale["city"]


def test_a_second_run_loads_nothing_new(gmail_env: GmailSandbox, wh: Warehouse) -> None:
    first = _run(wh)
    before = sorted(wh.rows("SELECT * FROM v_sales_latest"))
    gets = sum(1 for e in gmail_env.log() if e["kind"] == "get")

    second = _run(wh)

    assert first.status == second.status == "success", second.message
    assert second.counts["messages_read"] == 0
    assert second.counts["messages_already_loaded"] == first.counts["messages_listed"]
    assert second.counts["fact_rows_written"] == 0
    assert second.rows_processed == 0 and second.rows_rejected == 0
    assert sorted(wh.rows("SELECT * FROM v_sales_latest")) == before
    # Each message was fetched once, by the first run only.
    assert sum(1 for e in gmail_env.log() if e["kind"] == "get") == gets
    assert gets == first.counts["messages_listed"]
    loaded = wh.rows(
        "SELECT outcome, count() FROM gmail_loaded_messages FINAL GROUP BY outcome ORDER BY outcome"
    )
    assert dict(loaded) == {
        "no_data": 1,
        "rejected": 1,
        "sales": first.counts["messages_with_sales"],
    }


def test_a_key_in_sheets_and_gmail_shows_the_sheets_row_only(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    expected = gmail_env.expected()
    shared = sorted(expected)[0]
    sheets_only = (shared[0], "99999")
    assert sheets_only not in expected
    run_id = "sheets-run"
    rows = [
        {
            "source": "qtickets_sheets",
            "sale_date": day,
            "event_id": event,
            "event_name": "Из таблицы",
            "city": "москва",
            "tickets_sold": 1,
            "revenue": Decimal("111.11"),
        }
        for day, event in (shared, sheets_only)
    ]
    now = int(time.time())
    stage(wh, SALES, run_id, rows, now)
    publish(wh, SALES, run_id, Scope(equals={"source": ["qtickets_sheets"]}), loaded_at=now)

    assert _run(wh).status == "success"

    view = _sales(wh)
    assert view[shared] == (1, Decimal("111.11"), "qtickets_sheets")
    assert view[sheets_only] == (1, Decimal("111.11"), "qtickets_sheets")
    del expected[shared]
    assert _sales(wh, "gmail") == _as_view(expected)
    # Gmail's row of the shared key is kept in the fact, just not shown: never summed.
    assert wh.rows(
        "SELECT tickets_sold, revenue FROM fact_qtickets_sales_daily FINAL "
        "WHERE source = 'gmail' AND sale_date = {d:Date} AND event_id = {e:String}",
        {"d": shared[0], "e": shared[1]},
    ) == [(gmail_env.expected()[shared][0], gmail_env.expected()[shared][1])]


def test_the_most_recent_message_wins_whatever_order_messages_arrive_in(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    truth = gmail_env.truth("from:qtickets")
    correction = next(m for m in truth if m["subject"].startswith("Исправленный"))
    day = correction["sales"][0]["sale_date"]
    original = next(m for m in truth if m["kind"] == "csv" and m["sales"][0]["sale_date"] == day)
    key = (date.fromisoformat(day), correction["sales"][0]["event_id"])
    revised = correction["sales"][0]
    assert revised != original["sales"][0]  # the correction changed this line

    assert _run(wh).status == "success"
    assert _sales(wh)[key] == (revised["tickets_sold"], Decimal(revised["revenue"]), "gmail")
    before = _sales(wh)

    # A report received before the correction, delivered only now: it does not win.
    received = datetime.fromisoformat(correction["received_at"]) - timedelta(hours=1)
    line = {"event_id": key[1], "tickets_sold": 99, "revenue": "99999.99"}
    gmail_env.control(
        "gmail/messages",
        {"kind": "csv", "sale_date": day, "rows": [line], "received_at": received.isoformat()},
    )
    late = _run(wh)
    assert late.counts["messages_read"] == 1 and late.counts["fact_rows_written"] == 0
    assert _sales(wh) == before

    # A newer one does, for its own key only: the day's other keys stay (nothing retracted).
    line = {"event_id": key[1], "tickets_sold": 7, "revenue": "17500.00"}
    gmail_env.control("gmail/messages", {"kind": "html", "sale_date": day, "rows": [line]})
    newer = _run(wh)
    assert newer.counts["fact_rows_written"] == 1
    after = _sales(wh)
    assert after[key] == (7, Decimal("17500.00"), "gmail")
    del after[key], before[key]
    assert after == before
    assert len(correction["sales"]) > 1, "the corrected day must have other shows to keep"


def test_since_to_selects_messages_by_their_date(
    gmail_env: GmailSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_QUERY", "from:qtickets newer_than:7d")
    old_day = today_msk() - timedelta(days=12)
    old = [m for m in gmail_env.truth("from:qtickets") if m["received_at"][:10] == str(old_day)]
    assert len(old) == 1

    backfill = _run(wh, since=old_day, to=old_day)

    assert backfill.status == "success", backfill.message
    assert backfill.counts["window"] == f"{old_day}..{old_day}"
    assert backfill.counts["messages_listed"] == 1
    assert set(_sales(wh)) == {
        (date.fromisoformat(s["sale_date"]), s["event_id"]) for s in old[0]["sales"]
    }

    recent = _run(wh)

    assert recent.counts["messages_listed"] == len(gmail_env.truth("from:qtickets newer_than:7d"))
    assert recent.counts["messages_already_loaded"] == 0
    # A backfill of every day reads the reports neither run had, and nothing twice.
    everything = len(gmail_env.truth("from:qtickets"))
    rest = _run(wh, since=old_day, to=today_msk())
    assert rest.counts["messages_listed"] == everything
    assert rest.counts["messages_read"] == everything - 1 - recent.counts["messages_read"] > 0
    again = _run(wh, since=old_day, to=today_msk())
    assert again.counts["messages_read"] == 0
    assert again.counts["messages_already_loaded"] == everything
    assert _sales(wh) == _as_view(gmail_env.expected())


def test_a_dry_run_reads_everything_and_writes_nothing(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    dry = _run(wh, dry_run=True)

    assert dry.status == "dry_run", dry.message
    assert dry.rows_processed > 0 and dry.counts["messages_read"] == dry.counts["messages_listed"]
    for table in (
        "stg_gmail_sales",
        "gmail_loaded_messages",
        "fact_qtickets_sales_daily",
        "rejects",
    ):
        assert wh.scalar(f"SELECT count() FROM {table}") == 0, table

    real = _run(wh)

    assert real.counts["messages_read"] == dry.counts["messages_read"]
    assert real.rows_processed == dry.rows_processed


def test_a_message_deleted_after_listing_is_skipped_not_recorded(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    victim = gmail_env.truth("from:qtickets")[0]
    gmail_env.control("gmail/messages/delete", {"ids": [victim["id"]], "keep_listed": True})

    summary = _run(wh)

    assert summary.status == "success", summary.message
    assert summary.counts["messages_gone"] == 1
    loaded = {r[0] for r in wh.rows("SELECT msg_id FROM gmail_loaded_messages FINAL")}
    assert victim["id"] not in loaded and len(loaded) == summary.counts["messages_read"]


def test_a_revoked_refresh_token_fails_the_run_with_the_fix_and_an_alert(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    token_before = gmail_env.token_file()
    gmail_env.control("gmail/revoke")

    summary = _run(wh)

    assert summary.status == "error"
    message = summary.message
    assert "invalid_grant" in message and "Token has been expired or revoked" in message
    assert "zakaz gmail-auth" in message
    assert '"Testing"' in message and "7 days" in message and '"In production"' in message
    assert token_before["refresh_token"] not in message
    [alert] = open_alerts(wh, "gmail")
    assert alert.kind == "run_failed" and alert.severity == "error"
    assert "zakaz gmail-auth" in alert.message and "In production" in alert.message
    run = wh.dicts("SELECT status, message FROM meta_job_runs WHERE job = 'gmail'")
    assert [r["status"] for r in run] == ["error"] and "zakaz gmail-auth" in run[0]["message"]
    assert wh.scalar("SELECT count() FROM gmail_loaded_messages") == 0
    assert gmail_env.token_file()["refresh_token"] == token_before["refresh_token"]


def test_run_metrics_are_recorded(gmail_env: GmailSandbox, wh: Warehouse) -> None:
    summary = _run(wh)

    metrics = json.loads(
        wh.scalar(
            "SELECT metrics FROM meta_job_runs WHERE run_id = {r:String}",
            {"r": summary.run_id},
        )
    )
    assert metrics["messages_read"] == summary.counts["messages_read"] > 0
    assert metrics["fact_rows_written"] == len(gmail_env.expected())
    assert metrics["api_message_gets"] == metrics["messages_read"]
    freshness = wh.dicts(
        "SELECT last_data_date, last_status FROM v_data_freshness WHERE source = 'gmail'"
    )
    assert freshness == [{"last_data_date": max(gmail_env.expected())[0], "last_status": "success"}]
