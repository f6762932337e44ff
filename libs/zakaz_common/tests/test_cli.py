"""The `zakaz` command: run, backfill, check, status, and clear failures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.settings import CoreSettings, WarehouseSettings

runner = CliRunner()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI's database for this test: a fresh name in the session's embedded warehouse."""
    name = f"cli_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("CH_DATABASE", name)
    yield name
    open_warehouse(WarehouseSettings(), CoreSettings(), database=name).command(
        f"DROP DATABASE IF EXISTS {name}"
    )


def _wh(database: str) -> Warehouse:
    return open_warehouse(WarehouseSettings(), CoreSettings(), database=database)


def test_check_on_an_empty_warehouse_exits_0(database: str) -> None:
    result = runner.invoke(app, ["check", "--json"])

    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)
    assert {c["name"] for c in checks} >= {
        "duplicates:v_sales_latest",
        "negative_money:sales",
        "unknown_cities",
    }
    assert all(c["ok"] for c in checks if c["severity"] == "error")


def test_check_fails_on_negative_revenue_and_warns_on_unknown_city(
    database: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 1, "-100"]]))
    assert runner.invoke(app, ["run", "sample"]).exit_code == 0
    _wh(database).command(
        "INSERT INTO dim_events_src (event_id, source, event_name, city, _ver) "
        "VALUES ('1', 'gmail', 'x', 'атлантида', 1)"
    )

    result = runner.invoke(app, ["check", "--json"])

    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["negative_money:sales"]["ok"] is False
    assert checks["unknown_cities"]["ok"] is False
    assert "атлантида" in checks["unknown_cities"]["message"]


def test_run_prints_a_json_summary_and_exits_0(
    database: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 3, "300,30"]]))

    result = runner.invoke(app, ["run", "sample"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "success"
    assert summary["rows_processed"] == 1
    assert summary["revenue"] == "300.30"
    assert _wh(database).scalar("SELECT count() FROM meta_job_runs WHERE status = 'success'") == 1


def test_a_failed_run_exits_1_with_the_error_in_the_summary(
    database: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_FAIL", "auth")

    result = runner.invoke(app, ["run", "sample", "--dry-run"])

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "error"
    assert "SAMPLE_TOKEN" in summary["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuch"], "unknown source 'nosuch'"),
        (["run", "sample", "--since", "01.06.2025"], "use YYYY-MM-DD"),
        (["run", "sample", "--days", "2", "--since", "2025-06-01"], "either --days or --since"),
    ],
    ids=["unknown", "bad_date", "days_and_since"],
)
def test_bad_invocations_fail_with_a_clear_message(
    database: str, sample: SourceManifest, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)

    assert result.exit_code != 0
    assert message in result.output


def test_backfill_runs_in_chunks_and_resumes(
    database: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SAMPLE_ROWS", json.dumps([[f"2025-06-0{d}", 1, 1, "10"] for d in range(1, 6)])
    )

    first = runner.invoke(
        app, ["backfill", "sample", "--since", "2025-06-01", "--to", "2025-06-05"]
    )
    second = runner.invoke(
        app, ["backfill", "sample", "--since", "2025-06-01", "--to", "2025-06-05"]
    )

    assert first.exit_code == 0, first.output
    assert '"chunks": 3' in first.output and '"skipped": 0' in first.output
    assert '"skipped": 3' in second.output
    wh = _wh(database)
    assert wh.scalar("SELECT count() FROM v_sales_latest") == 5
    assert wh.scalar("SELECT count() FROM meta_job_runs WHERE job = 'sample'") == 3


def test_status_lists_every_contract_source(
    database: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 1, "10"]]))
    runner.invoke(app, ["run", "sample"])

    result = runner.invoke(app, ["status", "--json"])

    assert result.exit_code == 0, result.output
    rows = {r["source"]: r for r in json.loads(result.stdout)}
    assert set(rows) >= {"qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail", "sample"}
    assert rows["sample"]["last_status"] == "success"
    assert rows["sample"]["queued"] is None  # no Redis in this test
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "qtickets_sheets" in table.output


def test_a_second_process_on_the_same_embedded_warehouse_is_told_who_holds_it(
    tmp_path: Path,
) -> None:
    env = {"PATH": "/usr/bin:/bin", "ZAKAZ_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, sys; from zakaz_common.clickhouse import open_warehouse; open_warehouse(); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "zakaz_common", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == 1
    assert f"in use by pid {holder.pid}" in result.stderr
    assert "ClickHouse server" in result.stderr
    assert time.monotonic() - started < 30
