"""`zakaz run qtickets_sheets` from the command line, and no PII or secret anywhere it writes."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from sheets_support import SheetsSandbox
from typer.testing import CliRunner
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunRequest, execute
from zakaz_common.settings import CoreSettings
from zakaz_qtickets_sheets.manifest import MANIFEST

runner = CliRunner()


def test_zakaz_run_dry_run_then_twice_for_real(
    sheets_env: SheetsSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)

    dry = runner.invoke(app, ["run", "qtickets_sheets", "--dry-run"])
    first = runner.invoke(app, ["run", "qtickets_sheets"])
    second = runner.invoke(app, ["run", "qtickets_sheets"])

    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["status"] == "dry_run"
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["source"] == "qtickets_sheets" and summary["status"] == "success"
    assert summary["rows_rejected"] == 5 and summary["fact_rows_written"] > 0
    assert json.loads(second.stdout)["fact_rows_written"] == 0


def test_zakaz_run_exits_1_naming_the_missing_header(
    sheets_env: SheetsSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)
    sheets_env.control("sheets/headers/remove", {"tab": "Inventory", "header": "tickets_total"})

    result = runner.invoke(app, ["run", "qtickets_sheets"])

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "error"
    assert "worksheet 'Inventory'" in summary["message"]
    assert "'tickets_total'" in summary["message"]


def test_no_pii_or_secret_in_logs_tables_or_metrics(
    sheets_env: SheetsSandbox,
    wh: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SHEETS_RETRY_ATTEMPTS", "2")

    def run() -> str:
        return execute(MANIFEST, RunRequest(), wh=wh, core=CoreSettings()).status

    statuses = [run()]
    sheets_env.control("sheets/faults", {"rate_limit": 1})
    sheets_env.control("google/expire-access-tokens")
    statuses.append(run())
    sheets_env.control("sheets/sharing", {"shared": False})
    statuses.append(run())
    sheets_env.control("sheets/sharing", {"shared": True})
    sheets_env.control("sheets/faults", {"rate_limit": -1})
    statuses.append(run())
    assert statuses == ["success", "success", "error", "error"]

    key = json.loads(Path(os.environ["GSERVICE_JSON"]).read_text())
    tokens = sheets_env.get("google/stats")["access_tokens"]
    assert len(tokens) >= 2
    forbidden = [
        *tokens,
        key["private_key_id"],
        key["private_key"].splitlines()[5],
        "BEGIN PRIVATE KEY",
        "+7 916 555-12-34",
        "555-12-34",
        "anna.smirnova@example.ru",
        "Смирнова",
    ]
    written: list[Any] = [
        caplog.text,
        [repr(vars(record)) for record in caplog.records],
        wh.rows("SELECT message, metrics, params FROM meta_job_runs"),
        wh.rows("SELECT raw, reason FROM rejects"),
        wh.rows("SELECT message FROM alerts"),
        wh.rows("SELECT * FROM fact_qtickets_sales_daily"),
        wh.rows("SELECT * FROM dim_events_src"),
    ]
    haystack = json.dumps(written, ensure_ascii=False, default=str)
    assert "Google Sheets" in haystack  # the logs and messages were captured at all
    for secret in forbidden:
        assert secret not in haystack, f"{secret[:12]}… leaked"
