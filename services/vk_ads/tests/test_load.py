"""Integration: the real client against the VK sandbox over HTTP, into the embedded warehouse."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from typer.testing import CliRunner
from vk_support import (
    advertiser,
    api_requests,
    control,
    default_window,
    expected_marketing,
    marketing,
    nearest,
    run,
    seen,
)
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.settings import CoreSettings, WarehouseSettings
from zakaz_common.timeutil import today_msk
from zakaz_sandbox.vk_data import (
    AGENCY_CLIENT_ID,
    AGENCY_CLIENT_SECRET,
    AGENCY_CLIENTS,
    account_key,
    build_accounts,
)

runner = CliRunner()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """The CLI's database for this test, and a handle on it."""
    name = f"vk_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("CH_DATABASE", name)
    wh = open_warehouse(WarehouseSettings(), CoreSettings(), database=name)
    yield wh
    wh.command(f"DROP DATABASE IF EXISTS {name}")


def _banner_spend(today: date, content: str, since: date, to: date) -> Decimal:
    account = advertiser(today)
    ids = [b.id for b in account.banners if f"utm_content={content}" in b.url]
    assert ids, content
    return sum(
        (s.spent for i in ids for d, s in account.stats[i].items() if since <= d <= to),
        Decimal("0.00"),
    )


def test_spend_per_day_city_and_show_reach_v_marketing_daily_to_the_kopeck(
    wh: Warehouse, vk_env: str
) -> None:
    today = today_msk()
    since, to = default_window(today)

    summary = run(wh)

    assert summary.status == "success", summary.message
    assert (summary.counts["since"], summary.counts["to"]) == (since.isoformat(), to.isoformat())
    expected = expected_marketing(advertiser(today), since, to)
    assert marketing(wh) == expected
    total = sum(v[2] for v in expected.values())
    assert total > Decimal("10000")
    assert summary.counts["spend"] == str(total)
    assert wh.scalar("SELECT sum(spend) FROM v_campaign_performance WHERE platform = 'vk'") == total
    # Unparsed spend is in v_marketing_daily but never in v_romi_kpi.
    assert wh.scalar("SELECT count() FROM v_romi_kpi WHERE city = ''") == 0
    assert wh.scalar("SELECT sum(spend_vk) FROM v_romi_kpi") == sum(
        v[2] for k, v in expected.items() if k[1] != ""
    )


def test_campaign_performance_is_per_ad_plan(wh: Warehouse, vk_env: str) -> None:
    today = today_msk()
    since, to = default_window(today)
    account = advertiser(today)
    group_plan = {g.id: g.ad_plan_id for g in account.groups}
    plan_names = {p.id: p.name for p in account.plans}
    expected: dict[tuple[date, str], Decimal] = {}
    for banner in account.banners:
        for day, stat in account.stats[banner.id].items():
            if since <= day <= to and stat.spent:
                key = (day, str(group_plan[banner.ad_group_id]))
                expected[key] = expected.get(key, Decimal("0.00")) + stat.spent

    assert run(wh).status == "success"

    rows = wh.rows(
        "SELECT stat_date, campaign_id, campaign_name, spend, ctr, cpc "
        "FROM v_campaign_performance WHERE platform = 'vk'"
    )
    assert {(r[0], r[1]): r[3] for r in rows} == expected
    assert {r[2] for r in rows} <= set(plan_names.values())
    assert "Тест: разметка с ошибками" in {r[2] for r in rows}


def test_more_than_200_banners_in_batches_and_more_than_50_objects_paged(
    wh: Warehouse, vk_env: str
) -> None:
    summary = run(wh)

    assert summary.status == "success", summary.message
    assert summary.counts["banners"] == 229 and summary.counts["ad_groups"] == 58
    banner_pages = api_requests(vk_env, "/banners.json")
    assert [p["params"]["offset"] for p in banner_pages] == ["0", "50", "100", "150", "200"]
    assert all(
        p["params"]["limit"] == "50" for p in seen(vk_env)["requests"] if "limit" in p["params"]
    )
    group_asks = api_requests(vk_env, "/ad_groups.json")
    assert [len(p["params"]["_id__in"].split(",")) for p in group_asks] == [50, 8]
    batches = [p["params"]["id"].split(",") for p in api_requests(vk_env, "/day.json")]
    assert [len(b) for b in batches] == [200, 29]
    loaded = {r[0] for r in wh.rows("SELECT DISTINCT banner_id FROM fact_vk_ads_daily FINAL")}
    assert any(b in loaded for b in batches[1])
    assert all(p["status"] == 200 for p in seen(vk_env)["requests"])


def test_rerunning_a_day_leaves_totals_unchanged(wh: Warehouse, vk_env: str) -> None:
    first = run(wh)
    before = marketing(wh)

    second = run(wh)
    overlapping = run(wh, days=2)

    assert (first.status, second.status, overlapping.status) == ("success",) * 3
    assert marketing(wh) == before
    assert (second.counts["upserted"], second.counts["retracted"]) == (0, 0)
    assert (overlapping.counts["upserted"], overlapping.counts["retracted"]) == (0, 0)
    assert wh.scalar("SELECT count() FROM fact_vk_ads_daily FINAL") == first.rows_processed


def test_revised_numbers_replace_the_old(wh: Warehouse, vk_env: str) -> None:
    today = today_msk()
    since, to = default_window(today)
    assert run(wh).status == "success"
    account = advertiser(today)
    quiet, busy = sorted(
        (
            b
            for b in account.banners
            if account.stats[b.id].get(to) and account.stats[b.id][to].spent
        ),
        key=lambda b: b.id,
    )[:2]
    old = account.stats[busy.id][to]

    control(
        vk_env,
        "revise",
        {"date": to.isoformat(), "banner_id": busy.id, "spent": "1234.56", "shows": 7, "clicks": 3},
    )
    control(
        vk_env,
        "revise",
        {"date": to.isoformat(), "banner_id": quiet.id, "spent": "0", "shows": 0, "clicks": 0},
    )
    second = run(wh)

    assert second.status == "success", second.message
    assert (second.counts["upserted"], second.counts["retracted"]) == (1, 1)
    fact = dict(
        wh.rows(
            "SELECT banner_id, spend FROM fact_vk_ads_daily FINAL WHERE stat_date = {d:Date}",
            {"d": to},
        )
    )
    assert fact[str(busy.id)] == Decimal("1234.56")
    assert str(quiet.id) not in fact
    key = (to, busy.expected_city, busy.expected_event_date)
    expected = expected_marketing(account, since, to)
    quiet_stat = account.stats[quiet.id][to]
    want = expected[key][2] - old.spent - quiet_stat.spent + Decimal("1234.56")
    assert marketing(wh)[key][2] == want


def test_odd_tags_keep_their_spend_and_zakaz_check_reports_them(
    database: Warehouse, vk_env: str
) -> None:
    today = today_msk()
    since, to = default_window(today)

    result = runner.invoke(app, ["run", "vk_ads"])
    checked = runner.invoke(app, ["check", "--json"])

    assert result.exit_code == 0, result.output
    assert checked.exit_code == 0, checked.output
    wh = database
    by_content = {
        r[0]: (r[1], r[2], r[3])
        for r in wh.rows(
            "SELECT utm_content, any(city), any(event_date), sum(spend) "
            "FROM fact_vk_ads_daily FINAL WHERE utm_content IN ('ekb_31_02', 'unknown_12_12', 'promo_winter') "
            "GROUP BY utm_content"
        )
    }
    ekb = _banner_spend(today, "ekb_31_02", since, to)
    unknown = _banner_spend(today, "unknown_12_12", since, to)
    assert by_content["ekb_31_02"] == ("", None, ekb)
    # CONTRACT §4: an unknown slug with a valid date keeps the slug as its city.
    assert by_content["unknown_12_12"] == ("unknown", nearest(12, 12, to), unknown)
    assert by_content["promo_winter"][:2] == ("", None)
    unparsed = sum(v[2] for k, v in marketing(wh).items() if k[1] == "")
    assert unparsed >= ekb + by_content["promo_winter"][2]
    checks = {c["name"]: c for c in json.loads(checked.stdout)}
    assert checks["unparsed_utm_spend"]["ok"] is False
    assert f"vk: {unparsed} ₽" in checks["unparsed_utm_spend"]["message"]
    assert checks["unknown_cities"]["ok"] is False
    assert "'unknown' (ads)" in checks["unknown_cities"]["message"]


def test_agency_clients_are_loaded_each_as_its_own_account_not_the_agency(
    wh: Warehouse, vk_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VK_CLIENT_ID", AGENCY_CLIENT_ID)
    monkeypatch.setenv("VK_CLIENT_SECRET", AGENCY_CLIENT_SECRET)
    monkeypatch.setenv("VK_AGENCY_CLIENTS", f" {AGENCY_CLIENTS[0]},{AGENCY_CLIENTS[1]} ,")
    today = today_msk()
    since, to = default_window(today)
    accounts = build_accounts(today)

    summary = run(wh)

    assert summary.status == "success", summary.message
    assert summary.counts["accounts"] == 2
    loaded = dict(
        wh.rows("SELECT account, sum(spend) FROM fact_vk_ads_daily FINAL GROUP BY account")
    )
    for name in AGENCY_CLIENTS:
        account = accounts[account_key(AGENCY_CLIENT_ID, name)]
        want = sum(
            (
                s.spent
                for days in account.stats.values()
                for d, s in days.items()
                if since <= d <= to
            ),
            Decimal("0.00"),
        )
        assert loaded[name] == want
    assert set(loaded) == set(AGENCY_CLIENTS)
    assert seen(vk_env)["token_requests"] == {"agency_client_credentials": 2}


def test_a_pre_issued_token_is_used_as_given_and_its_refusal_fails_the_run(
    wh: Warehouse, vk_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = httpx.post(
        f"{vk_env}/api/v2/oauth2/token.json",
        data={
            "grant_type": "client_credentials",
            "client_id": "vk-sandbox-advertiser",
            "client_secret": "vk-sandbox-secret-5d1e8a7c",
        },
    ).json()["access_token"]
    monkeypatch.delenv("VK_CLIENT_ID")
    monkeypatch.delenv("VK_CLIENT_SECRET")
    monkeypatch.setenv("VK_TOKEN", token)

    ok = run(wh)
    control(vk_env, "tokens/expire")
    refused = run(wh)

    assert ok.status == "success" and ok.counts["token_cache"] == "none"
    assert ok.rows_processed > 0
    assert refused.status == "error"
    assert "VK_TOKEN" in refused.message and "expired_token" in refused.message
    assert token not in refused.message
    assert seen(vk_env)["token_requests"] == {"client_credentials": 1}
    assert wh.scalar("SELECT count() FROM fact_vk_ads_daily FINAL") == ok.rows_processed
    assert wh.scalar("SELECT count() FROM alerts WHERE job = 'vk_ads'") >= 1


def test_a_failed_run_leaves_the_warehouse_as_it_was(wh: Warehouse, vk_env: str) -> None:
    today = today_msk()
    _, to = default_window(today)
    assert run(wh).status == "success"
    before = marketing(wh)
    control(vk_env, "revise", {"date": to.isoformat(), "factor": "2"})
    control(vk_env, "fail", {"count": 1000, "status": 503})

    failed = run(wh)

    assert failed.status == "error"
    assert "503" in failed.message
    assert marketing(wh) == before


def test_a_dry_run_reads_and_counts_but_writes_nothing(wh: Warehouse, vk_env: str) -> None:
    summary = run(wh, dry_run=True)

    assert summary.status == "dry_run"
    assert summary.rows_processed > 700
    assert wh.scalar("SELECT count() FROM fact_vk_ads_daily") == 0
    assert wh.scalar("SELECT count() FROM stg_vk_ads_daily") == 0


def test_since_to_and_days_override_the_window(wh: Warehouse, vk_env: str) -> None:
    today = today_msk()
    day = today - timedelta(days=10)

    one = run(wh, since=day, to=day)
    week = run(wh, days=7)

    assert (one.counts["since"], one.counts["to"]) == (day.isoformat(), day.isoformat())
    assert week.counts["since"] == (today - timedelta(days=7)).isoformat()
    assert week.counts["to"] == (today - timedelta(days=1)).isoformat()
    days = {r[0] for r in wh.rows("SELECT DISTINCT stat_date FROM fact_vk_ads_daily FINAL")}
    assert day in days and len(days) == 8


def test_backfill_runs_in_92_day_chunks(database: Warehouse, vk_env: str) -> None:
    today = today_msk()
    since, to = today - timedelta(days=120), today - timedelta(days=1)

    result = runner.invoke(
        app, ["backfill", "vk_ads", "--since", since.isoformat(), "--to", to.isoformat()]
    )

    assert result.exit_code == 0, result.output
    assert '"chunks": 2' in result.output
    windows = {
        (r["params"]["date_from"], r["params"]["date_to"])
        for r in api_requests(vk_env, "/day.json")
    }
    assert windows == {
        (since.isoformat(), (since + timedelta(days=91)).isoformat()),
        ((since + timedelta(days=92)).isoformat(), to.isoformat()),
    }
    expected = expected_marketing(advertiser(today), since, to)
    assert marketing(database) == expected


def test_missing_settings_fail_the_run_with_what_to_set(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = run(wh)

    assert summary.status == "error"
    assert "VK_CLIENT_ID" in summary.message and "VK_TOKEN" in summary.message


def test_no_token_or_secret_reaches_logs_or_tables(
    wh: Warehouse, vk_env: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert run(wh).status == "success"
    control(vk_env, "tokens/expire")
    control(vk_env, "throttle", {"count": 2})
    assert run(wh).status == "success"
    control(vk_env, "tokens/invalidate")
    assert run(wh).status == "success"

    issued = httpx.get(f"{vk_env}/_sandbox/vk/tokens").json()
    values = [t["access_token"] for t in issued["tokens"]]
    values += [t["refresh_token"] for t in issued["tokens"]] + issued["secrets"]
    stored = json.dumps(
        wh.rows("SELECT message, metrics, params FROM meta_job_runs")
        + wh.rows("SELECT raw, reason FROM rejects")
        + wh.rows("SELECT message FROM alerts"),
        default=str,
    )
    assert values and caplog.text
    assert "retrying" in caplog.text
    for value in values:
        assert value not in caplog.text
        assert value not in stored
