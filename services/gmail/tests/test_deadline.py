"""A Gmail (or its token endpoint) that accepts connections and never answers fails the run at
its deadline, and the views stay as they were."""

from __future__ import annotations

import json

import pytest
from gmail_support import GmailSandbox
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunSummary
from zakaz_common.testing import (
    assert_stopped_at_deadline,
    silent_server,
    timed_run,
    warehouse_snapshot,
)
from zakaz_gmail.manifest import MANIFEST

#: The test-short deadline of the silent runs (seconds).
DEADLINE = 3.0


def _run(wh: Warehouse) -> tuple[RunSummary, float]:
    return timed_run(MANIFEST, wh)


@pytest.fixture
def loaded(gmail_env: GmailSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """Every report in the mailbox loaded once, and the next runs' deadline cut short."""
    first, _ = _run(wh)
    assert first.status == "success", first.message
    assert wh.scalar("SELECT count() FROM v_sales_latest") > 0
    monkeypatch.setenv("ZAKAZ_DEADLINE_GMAIL_SECONDS", str(DEADLINE))
    monkeypatch.setenv("GMAIL_TIMEOUT_SECONDS", "1")
    return wh


def test_a_silent_gmail_fails_the_run_at_its_deadline(
    loaded: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = warehouse_snapshot(loaded)
    with silent_server() as url:
        monkeypatch.setenv("GMAIL_API_URL", url)
        summary, elapsed = _run(loaded)

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "reading Gmail (list)" in summary.message
    assert warehouse_snapshot(loaded) == before


def test_a_silent_token_endpoint_fails_the_run_at_its_deadline(
    loaded: Warehouse, gmail_env: GmailSandbox
) -> None:
    before = warehouse_snapshot(loaded)
    token_file = gmail_env.gmail_dir / "token.json"
    token = json.loads(token_file.read_text())
    with silent_server() as url:
        # An expired access token, refreshed at an endpoint that never answers.
        token["token_uri"] = token["token_uri"].replace(gmail_env.base_url, url)
        token["expiry"] = "2000-01-01T00:00:00Z"
        token_file.write_text(json.dumps(token))
        summary, elapsed = _run(loaded)

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "refreshing the Gmail access token" in summary.message
    assert warehouse_snapshot(loaded) == before
