"""The `direct` load end to end: real client → sandbox over HTTP → embedded warehouse → BI views."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from direct_support import DirectSandbox, spend_by_day_and_campaign, spend_by_show
from typer.testing import CliRunner
from zakaz_common.alerts import open_alerts
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.runs import RunRequest, RunSummary, execute, get_run
from zakaz_common.settings import CoreSettings, WarehouseSettings
from zakaz_common.timeutil import today_msk
from zakaz_direct.manifest import MANIFEST
from zakaz_sandbox.direct_data import TOKEN

YESTERDAY = today_msk() - timedelta(days=1)
WINDOW = (YESTERDAY - timedelta(days=3), YESTERDAY)


def run(wh: Warehouse, request: RunRequest | None = None) -> RunSummary:
    return execute(MANIFEST, request or RunRequest(), wh=wh, core=CoreSettings())


def campaign_spend(wh: Warehouse) -> dict[tuple[str, str], Decimal]:
    rows = wh.rows(
        "SELECT toString(stat_date), campaign_id, spend FROM v_campaign_performance "
        "WHERE platform = 'direct'"
    )
    return {(d, c): s for d, c, s in rows}


def show_spend(wh: Warehouse) -> dict[tuple[str, str, str | None], Decimal]:
    rows = wh.rows(
        "SELECT toString(stat_date), city, event_date, spend FROM v_marketing_daily "
        "WHERE platform = 'direct'"
    )
    return {(d, c, e.isoformat() if e else None): s for d, c, e, s in rows}


def test_a_run_lands_spend_to_the_kopeck_with_shows_and_filled_templates(
    wh: Warehouse, direct_env: DirectSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    summary = run(wh)

    assert summary.status == "success", summary.message
    counts = summary.counts
    assert (counts["since"], counts["to"]) == tuple(d.isoformat() for d in WINDOW)
    truth = direct_env.truth(*WINDOW)
    assert summary.rows_processed == len(truth) > 100
    # Spend per day and campaign, to the kopeck, in rubles.
    expected = spend_by_day_and_campaign(truth)
    assert campaign_spend(wh) == expected
    assert max(expected.values()) < Decimal(100_000)
    assert Decimal(counts["spend"]) == sum(expected.values())
    # City and show date from each ad's utm_content, unparsed spend kept with city ''.
    assert show_spend(wh) == spend_by_show(truth)
    assert ("", None) in {(c, e) for _, c, e in show_spend(wh)}
    # The offline queue was gone through, asking for rubles.
    reports = direct_env.requests("reports")
    assert [r["status"] for r in reports] == [201, 202, 200]
    assert not any(r["money_in_micros"] for r in reports)
    assert counts["report_polls"] == 2
    assert counts["units_spent"] > 0 and counts["units_daily_limit"] == 64_000
    # {ad_id}, {gbid} and {campaign_id} were filled in from the report row before parsing.
    assert wh.scalar(
        "SELECT count() FROM fact_direct_daily FINAL WHERE utm_term = ad_id AND ad_id != ''"
    )
    assert wh.scalar(
        "SELECT count() FROM fact_direct_daily FINAL "
        "WHERE utm_term = concat(ad_group_id, '_', ad_id)"
    )
    assert wh.scalar("SELECT count() FROM fact_direct_daily FINAL WHERE utm_campaign = campaign_id")
    leftovers = wh.scalar(
        "SELECT count() FROM fact_direct_daily FINAL WHERE "
        "match(concat(utm_campaign, utm_content, utm_term), '\\\\{(ad_id|gbid|campaign_id)\\\\}')"
    )
    assert leftovers == 0
    assert wh.scalar("SELECT countIf(NOT include_vat) FROM fact_direct_daily FINAL") == 0
    # Parsed spend reaches ROMI; unparsed does not.
    parsed = sum(v for (_, city, _), v in spend_by_show(truth).items() if city)
    assert wh.scalar("SELECT sum(spend_direct) FROM v_romi_kpi") == parsed
    # No secret in logs or in the recorded run.
    recorded = get_run(wh, summary.run_id)
    assert recorded is not None
    assert TOKEN not in caplog.text and TOKEN not in json.dumps(recorded, default=str)
    # The API points (Units header) are recorded with the run.
    metrics = json.loads(recorded["metrics"])
    assert metrics["units_spent"] == counts["units_spent"] > 0
    assert metrics["units_remaining"] == 64_000 - counts["units_spent"]


def test_rerunning_leaves_the_totals_unchanged(wh: Warehouse, direct_env: DirectSandbox) -> None:
    first = run(wh)
    before = campaign_spend(wh)
    live = wh.scalar("SELECT count() FROM fact_direct_daily FINAL")

    second = run(wh)

    assert first.status == second.status == "success"
    assert (second.counts["upserted"], second.counts["retracted"]) == (0, 0)
    assert campaign_spend(wh) == before
    assert wh.scalar("SELECT count() FROM fact_direct_daily FINAL") == live
    # Each run asked for its own report: the second was not handed the first one's numbers.
    names = {r["report_name"] for r in direct_env.requests("reports")}
    assert len(names) == 2


def test_a_revised_day_replaces_the_old_numbers(wh: Warehouse, direct_env: DirectSandbox) -> None:
    assert run(wh).status == "success"
    old = campaign_spend(wh)
    rows = [r for r in direct_env.truth(YESTERDAY, YESTERDAY)]
    gone, fixed = rows[0], rows[1]
    direct_env.control("revise", {"date": YESTERDAY.isoformat(), "factor": "0.5"})
    direct_env.control(
        "revise", {"date": YESTERDAY.isoformat(), "ad_id": int(gone["ad_id"]), "remove": True}
    )
    direct_env.control(
        "revise",
        {
            "date": YESTERDAY.isoformat(),
            "ad_id": int(fixed["ad_id"]),
            "clicks": 7,
            "cost": "1234.56",
        },
    )

    summary = run(wh, RunRequest(since=YESTERDAY, to=YESTERDAY))

    assert summary.status == "success", summary.message
    assert summary.counts["retracted"] == 1
    new = campaign_spend(wh)
    assert new == {**old, **spend_by_day_and_campaign(direct_env.truth(YESTERDAY, YESTERDAY))}
    assert new != old
    key = {"d": YESTERDAY, "ad": gone["ad_id"]}
    assert not wh.scalar(
        "SELECT count() FROM fact_direct_daily FINAL WHERE stat_date = {d:Date} AND ad_id = {ad:String}",
        key,
    )
    assert wh.rows(
        "SELECT clicks, spend FROM fact_direct_daily FINAL "
        "WHERE stat_date = {d:Date} AND ad_id = {ad:String}",
        {"d": YESTERDAY, "ad": fixed["ad_id"]},
    ) == [(7, Decimal("1234.56"))]


def test_error_53_ends_the_run_in_error_after_one_request(
    wh: Warehouse,
    direct_env: DirectSandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert run(wh).status == "success"
    before = campaign_spend(wh)
    direct_env.control("reset")
    monkeypatch.setenv("DIRECT_TOKEN", "y0_revoked-token-9f8e7d6c5b")
    caplog.set_level(logging.DEBUG)

    summary = run(wh)

    assert summary.status == "error"
    assert "Direct error 53" in summary.message
    assert "issue a new token" in summary.message and "DIRECT_TOKEN" in summary.message
    assert len(direct_env.requests()) == 1
    recorded = get_run(wh, summary.run_id)
    assert recorded is not None and recorded["status"] == "error"
    assert [a.kind for a in open_alerts(wh, "direct")] == ["run_failed"]
    assert campaign_spend(wh) == before
    assert "y0_revoked" not in caplog.text + json.dumps(recorded, default=str)


def test_a_full_report_queue_is_waited_out(wh: Warehouse, direct_env: DirectSandbox) -> None:
    direct_env.control("queue", {"fill": 5, "drain_after": 3})

    summary = run(wh)

    assert summary.status == "success", summary.message
    assert (summary.counts["queue_full"], summary.counts["report_polls"]) == (3, 2)
    assert campaign_spend(wh) == spend_by_day_and_campaign(direct_env.truth(*WINDOW))


def test_a_report_still_queued_at_the_deadline_fails_the_run_transiently(
    wh: Warehouse, direct_env: DirectSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct_env.control("config", {"offline_polls": 50, "retry_in": 1})
    monkeypatch.setenv("DIRECT_REPORT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("DIRECT_MAX_WAIT_SECONDS", "0.1")

    summary = run(wh)

    assert summary.status == "error"
    assert "still not ready" in summary.message
    assert getattr(summary.error, "transient", False) is True  # RQ retries the run later
    assert wh.scalar("SELECT count() FROM fact_direct_daily") == 0


def test_missing_settings_fail_the_run_naming_them(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIRECT_CLIENT_LOGIN", "zakaz-events")

    summary = run(wh)

    assert summary.status == "error"
    assert "DIRECT_TOKEN not set" in summary.message


def test_a_dry_run_counts_and_writes_nothing(wh: Warehouse, direct_env: DirectSandbox) -> None:
    summary = run(wh, RunRequest(days=2, dry_run=True))

    assert summary.status == "dry_run"
    assert summary.rows_processed == len(direct_env.truth(YESTERDAY - timedelta(days=1), YESTERDAY))
    assert "upserted" not in summary.counts
    assert wh.scalar("SELECT count() FROM fact_direct_daily") == 0


def test_vat_excluded_is_stored_with_the_rows(
    wh: Warehouse, direct_env: DirectSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIRECT_INCLUDE_VAT", "no")

    summary = run(wh, RunRequest(since=YESTERDAY, to=YESTERDAY))

    assert summary.counts["include_vat"] == "NO"
    assert campaign_spend(wh) == spend_by_day_and_campaign(
        direct_env.truth(YESTERDAY, YESTERDAY, include_vat=False)
    )
    assert wh.scalar("SELECT countIf(include_vat) FROM fact_direct_daily FINAL") == 0


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """The CLI's database for this test: a fresh name in the session's embedded warehouse."""
    name = f"cli_direct_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("CH_DATABASE", name)
    wh = open_warehouse(WarehouseSettings(), CoreSettings(), database=name)
    yield wh
    wh.command(f"DROP DATABASE IF EXISTS {name}")


def test_zakaz_run_and_backfill_direct(database: Warehouse, direct_env: DirectSandbox) -> None:
    runner = CliRunner()
    since = YESTERDAY - timedelta(days=40)

    ran = runner.invoke(app, ["run", "direct", "--days", "1"])
    filled = runner.invoke(
        app, ["backfill", "direct", "--since", str(since), "--to", str(YESTERDAY)]
    )

    assert ran.exit_code == 0, ran.output
    summary: dict[str, Any] = json.loads(ran.stdout)
    assert (summary["source"], summary["status"]) == ("direct", "success")
    for key in ("run_id", "rows_processed", "rows_rejected", "duration_ms", "units_spent"):
        assert key in summary
    assert filled.exit_code == 0, filled.output
    assert '"chunks": 2' in filled.output and '"failed": 0' in filled.output
    truth = direct_env.truth(since, YESTERDAY)
    assert campaign_spend(database) == spend_by_day_and_campaign(truth)
    names = [r["report_name"] for r in direct_env.requests("reports") if r["status"] == 200]
    assert len(names) == 3
    assert (
        database.scalar("SELECT last_data_date FROM v_data_freshness WHERE source = 'direct'")
        == YESTERDAY
    )


def test_the_default_window_is_yesterday_and_the_lookback_days(
    wh: Warehouse, direct_env: DirectSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIRECT_LOOKBACK_DAYS", "0")

    summary = run(wh)

    assert (summary.counts["since"], summary.counts["to"]) == (YESTERDAY.isoformat(),) * 2
    days = wh.rows("SELECT DISTINCT stat_date FROM fact_direct_daily FINAL")
    assert days == [(YESTERDAY,)]
