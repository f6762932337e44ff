"""`execute`: one recorded run per load, alerts on failure, dry runs, rejects, the source lock."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import ConfigError
from zakaz_common.locks import file_lock
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import RUN_FAILED, RunRequest, execute, get_run, latest_runs
from zakaz_common.settings import CoreSettings


def rows_env(monkeypatch: pytest.MonkeyPatch, rows: list[list[object]]) -> None:
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps(rows))


def test_a_successful_run_is_recorded_with_its_metrics(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_env(monkeypatch, [["2025-06-01", 1, 2, "1 500,50"], ["2025-06-02", 1, 1, "700"]])

    summary = execute(sample, RunRequest(), wh=wh, core=core)

    assert summary.status == "success"
    assert summary.rows_processed == 2
    data = summary.to_dict()
    for key in ("source", "run_id", "status", "rows_processed", "rows_rejected", "duration_ms"):
        assert key in data
    assert data["upserted"] == 2
    run = get_run(wh, summary.run_id)
    assert run is not None
    assert (run["status"], run["source"], run["rows_processed"]) == ("success", "sample", 2)
    assert json.loads(run["metrics"])["duration_ms"] >= 0
    assert wh.scalar("SELECT sum(revenue) FROM v_sales_latest") == Decimal("2200.50")


def test_a_failed_run_is_recorded_alerts_once_and_a_success_resolves_it(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_FAIL", "auth")
    first = execute(sample, RunRequest(), wh=wh, core=core)
    second = execute(sample, RunRequest(), wh=wh, core=core)

    assert first.status == second.status == "error"
    assert "401" in first.message
    assert "abc123secret" not in first.message
    run = get_run(wh, first.run_id)
    assert run is not None and run["status"] == "error" and "abc123secret" not in run["message"]
    alerts = open_alerts(wh, "sample")
    assert [a.kind for a in alerts] == [RUN_FAILED]

    monkeypatch.delenv("SAMPLE_FAIL")
    assert execute(sample, RunRequest(), wh=wh, core=core).status == "success"
    assert open_alerts(wh, "sample") == []


def test_a_dry_run_writes_only_its_run_row(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_env(monkeypatch, [["2025-06-01", 1, 2, "100"]])

    summary = execute(sample, RunRequest(dry_run=True), wh=wh, core=core)

    assert summary.status == "dry_run"
    assert summary.rows_processed == 1
    assert wh.scalar("SELECT count() FROM fact_qtickets_sales_daily") == 0
    assert wh.scalar("SELECT count() FROM stg_qtickets_sales") == 0
    assert [r["status"] for r in latest_runs(wh, "sample")] == ["dry_run"]


def test_unreadable_rows_go_to_rejects_and_the_rest_loads(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_env(monkeypatch, [["2025-06-01", 1, 2, "100"], ["2025-06-01", 2, 1, "сто рублей"]])

    summary = execute(sample, RunRequest(), wh=wh, core=core)

    assert (summary.status, summary.rows_processed, summary.rows_rejected) == ("success", 1, 1)
    rejects = wh.dicts("SELECT source, entity, raw, reason, run_id FROM rejects")
    assert len(rejects) == 1
    assert rejects[0]["source"] == "sample" and rejects[0]["run_id"] == summary.run_id
    assert "сто рублей" in rejects[0]["raw"]
    assert rejects[0]["reason"]


def test_a_window_narrows_what_a_reload_retracts(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_env(
        monkeypatch,
        [["2025-06-01", 1, 1, "10"], ["2025-06-02", 1, 1, "20"], ["2025-06-03", 1, 1, "30"]],
    )
    execute(sample, RunRequest(), wh=wh, core=core)

    rows_env(monkeypatch, [["2025-06-03", 1, 1, "30"]])
    summary = execute(
        sample, RunRequest(since=date(2025, 6, 2), to=date(2025, 6, 3)), wh=wh, core=core
    )

    assert (summary.counts["upserted"], summary.counts["retracted"]) == (0, 1)
    assert sorted(r[0] for r in wh.rows("SELECT sale_date FROM v_sales_latest")) == [
        date(2025, 6, 1),
        date(2025, 6, 3),
    ]


def test_a_run_while_another_holds_the_lock_is_refused_and_not_recorded(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest
) -> None:
    with file_lock("sample", core.data_dir):
        summary = execute(sample, RunRequest(), wh=wh, core=core)

    assert summary.status == "error"
    assert "already in progress" in summary.message
    assert latest_runs(wh, "sample") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 3, "since": date(2025, 1, 1)}, "either --days or --since"),
        ({"days": 0}, "at least 1"),
        ({"to": date(2025, 1, 1)}, "--to needs --since"),
        ({"since": date(2025, 1, 2), "to": date(2025, 1, 1)}, "is after"),
    ],
    ids=["days_and_since", "zero_days", "to_alone", "reversed"],
)
def test_bad_requests_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        RunRequest(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "default_days", "window"),
    [
        (RunRequest(), None, None),
        (RunRequest(), 30, (date(2025, 5, 3), date(2025, 6, 1))),
        (RunRequest(days=1), 30, (date(2025, 6, 1), date(2025, 6, 1))),
        (RunRequest(since=date(2025, 5, 1)), None, (date(2025, 5, 1), date(2025, 6, 1))),
        (
            RunRequest(since=date(2025, 5, 1), to=date(2025, 5, 2)),
            30,
            (date(2025, 5, 1), date(2025, 5, 2)),
        ),
    ],
    ids=["whole", "default_days", "days", "since_only", "since_to"],
)
def test_request_windows(request_: RunRequest, default_days: int | None, window: object) -> None:
    assert request_.window(date(2025, 6, 1), default_days) == window
    assert RunRequest.from_params(request_.as_params()) == request_


def test_marts_follow_what_a_failed_run_published_and_a_dry_run_leaves_them(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_env(monkeypatch, [["2025-06-01", 1, 2, "100"]])
    execute(sample, RunRequest(), wh=wh, core=core)
    # Each refresh swaps a new table in, so the mart's table id tells whether one happened.
    mart_id = "SELECT toString(uuid) FROM system.tables WHERE database = {db:String} AND name = 'mart_data_freshness'"
    first = wh.scalar(mart_id, {"db": wh.database})

    execute(sample, RunRequest(dry_run=True), wh=wh, core=core)
    assert wh.scalar(mart_id, {"db": wh.database}) == first

    rows_env(monkeypatch, [["2025-06-01", 1, 2, "100"], ["2025-06-05", 1, 1, "50"]])
    monkeypatch.setenv("SAMPLE_FAIL", "after_publish")
    summary = execute(sample, RunRequest(), wh=wh, core=core)

    assert summary.status == "error"
    assert wh.scalar(mart_id, {"db": wh.database}) != first
    assert wh.scalar("SELECT last_data_date FROM v_data_freshness WHERE source = 'gmail'") == date(
        2025, 6, 5
    )


def test_rejected_rows_keep_their_keys_warn_once_and_check_reports_them(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zakaz_common.checks import check_held_back
    from zakaz_common.runs import HELD_BACK

    good = [["2025-06-01", 1, 2, "1 500,50"], ["2025-06-02", 1, 1, "700"]]
    rows_env(monkeypatch, good)
    execute(sample, RunRequest(), wh=wh, core=core)
    # The upstream revises 2025-06-02 to a value that cannot be read; the run succeeds, the key
    # keeps its good value, and the operator hears of it once.
    rows_env(monkeypatch, [good[0], ["2025-06-02", 1, 1, "1e300"]])
    held = execute(sample, RunRequest(), wh=wh, core=core)
    again = execute(sample, RunRequest(), wh=wh, core=core)

    assert held.status == "success"
    assert (held.counts["held_back"], held.counts["held_back_dates"]) == (1, ["2025-06-02"])
    assert "1 keys kept at their last good value" in held.message
    assert wh.scalar("SELECT sum(revenue) FROM v_sales_latest") == Decimal("2200.50")
    warnings = [a for a in open_alerts(wh, "sample") if a.kind == HELD_BACK]
    assert len(warnings) == 1 and "2025-06-02" in warnings[0].message
    assert again.counts["held_back"] == 1
    [check] = check_held_back(wh)
    assert not check.ok and "sample: 1 keys (2025-06-02)" in check.message

    # Fixed upstream: the next run reads the row, and the warning and the check clear.
    rows_env(monkeypatch, [good[0], ["2025-06-02", 1, 3, "900"]])
    fixed = execute(sample, RunRequest(), wh=wh, core=core)

    assert "held_back" not in fixed.counts
    assert wh.scalar("SELECT sum(revenue) FROM v_sales_latest") == Decimal("2400.50")
    assert not [a for a in open_alerts(wh, "sample") if a.kind == HELD_BACK]
    assert check_held_back(wh)[0].ok


def test_rejects_recorded_after_their_fact_was_published_are_refused(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest
) -> None:
    import logging

    from zakaz_common.facts import SALES
    from zakaz_common.load import Reject, Scope
    from zakaz_common.locks import source_lock
    from zakaz_common.runs import RunContext, today_msk

    with source_lock("sample", redis_url=core.redis_url, data_dir=core.data_dir) as lease:
        ctx = RunContext(
            wh, sample, "r1", RunRequest(), core, 0, today_msk(), logging.getLogger(), lease
        )
        ctx.publish(SALES, Scope(equals={"source": ["gmail"]}))

        with pytest.raises(RuntimeError, match="before publishing"):
            ctx.reject([Reject("sales", {}, "bad", {"event_id": "1"}, (SALES.fact,))])
