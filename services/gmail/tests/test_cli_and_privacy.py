"""`zakaz run gmail` from the command line, and no PII or secret anywhere the source writes."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from gmail_support import GmailSandbox
from typer.testing import CliRunner
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunRequest, execute
from zakaz_common.settings import CoreSettings
from zakaz_gmail.manifest import MANIFEST

runner = CliRunner()


def test_zakaz_run_gmail_dry_run_then_twice_for_real(
    gmail_env: GmailSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)

    dry = runner.invoke(app, ["run", "gmail", "--dry-run"])
    first = runner.invoke(app, ["run", "gmail"])
    second = runner.invoke(app, ["run", "gmail"])

    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["status"] == "dry_run"
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["source"] == "gmail" and summary["status"] == "success"
    assert summary["messages_read"] == summary["messages_listed"] > 0
    assert summary["fact_rows_written"] == len(gmail_env.expected())
    again = json.loads(second.stdout)
    assert (again["messages_read"], again["fact_rows_written"]) == (0, 0)


def test_zakaz_run_gmail_exits_1_with_the_fix_when_consent_is_gone(
    gmail_env: GmailSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)
    gmail_env.control("gmail/revoke")

    result = runner.invoke(app, ["run", "gmail"])

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "error"
    assert "invalid_grant" in summary["message"] and "zakaz gmail-auth" in summary["message"]


def test_no_pii_or_secret_in_logs_tables_or_metrics(
    gmail_env: GmailSandbox,
    wh: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GMAIL_RETRY_ATTEMPTS", "2")
    # The reports' sender is matched, as an operator would write it.
    monkeypatch.setenv("GMAIL_QUERY", "from:reports@qtickets.ru")

    def run() -> str:
        return execute(MANIFEST, RunRequest(), wh=wh, core=CoreSettings()).status

    statuses = [run()]
    gmail_env.control("gmail/messages", {"kind": "csv", "sale_date": "2025-06-02"})
    gmail_env.control("gmail/faults", {"rate_limit": 1})
    gmail_env.control("google/expire-access-tokens")
    statuses.append(run())
    gmail_env.control("gmail/messages", {"kind": "html", "sale_date": "2025-06-02"})
    gmail_env.control("gmail/faults", {"rate_limit": -1})
    statuses.append(run())
    gmail_env.control("gmail/faults", {"rate_limit": 0})
    gmail_env.control("gmail/revoke")
    statuses.append(run())
    assert statuses == ["success", "success", "error", "error"]

    token = gmail_env.token_file()
    tokens = gmail_env.get("google/stats")["access_tokens"]
    assert len(tokens) >= 2
    forbidden = [
        *tokens,
        token["refresh_token"],
        token["client_secret"],
        "reports@qtickets.ru",
        "otchety@example-events.ru",
        "anna.smirnova",
        "Смирнова",
        "555-12-34",
        "petrov.ivan",
        "Петров",
        "123-45-67",
    ]
    written: list[Any] = [
        caplog.text,
        [repr(vars(record)) for record in caplog.records],
        wh.rows("SELECT message, metrics, params FROM meta_job_runs"),
        wh.rows("SELECT raw, reason FROM rejects"),
        wh.rows("SELECT message FROM alerts"),
        wh.rows("SELECT * FROM fact_qtickets_sales_daily"),
        wh.rows("SELECT * FROM stg_qtickets_sales"),
        wh.rows("SELECT * FROM stg_gmail_sales"),
        wh.rows("SELECT * FROM gmail_loaded_messages"),
    ]
    haystack = json.dumps(written, ensure_ascii=False, default=str)
    # The logs and messages were captured at all: retries, a refresh, the failures.
    assert "Gmail rate limit" in haystack and "invalid_grant" in haystack
    assert "н/д" in haystack  # the rejected row is there, without its neighbours' PII
    for secret in forbidden:
        assert secret not in haystack, f"{secret[:12]}… leaked"
