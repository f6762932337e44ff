"""A Google that accepts connections and never answers fails the run at its deadline, changing
nothing the views show: the Sheets API silent, and the token endpoint silent."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from sheets_support import SheetsSandbox
from zakaz_common.clickhouse import Warehouse
from zakaz_common.deadline import Deadline, DeadlineExceeded
from zakaz_common.runs import RunRequest, execute
from zakaz_common.settings import CoreSettings
from zakaz_common.testing import assert_stopped_at_deadline, silent_server, warehouse_snapshot
from zakaz_qtickets_sheets.manifest import MANIFEST
from zakaz_qtickets_sheets.transport import ReadLimiter

#: The test-short deadline of the silent runs (seconds).
DEADLINE = 3.0


@pytest.fixture
def loaded(sheets_env: SheetsSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """The sheet loaded once, as it stands, and the next runs' deadline cut short."""
    first = execute(MANIFEST, RunRequest(), wh=wh, core=CoreSettings())
    assert first.status == "success", first.message
    assert wh.scalar("SELECT count() FROM v_sales_latest") > 0
    monkeypatch.setenv("ZAKAZ_DEADLINE_QTICKETS_SHEETS_SECONDS", str(DEADLINE))
    return wh


def test_a_silent_sheets_api_fails_the_run_at_its_deadline(
    loaded: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = warehouse_snapshot(loaded)
    # Short reads, so several attempts fit before the deadline: none may start after it.
    monkeypatch.setenv("SHEETS_TIMEOUT_SECONDS", "1")
    with silent_server() as url:
        monkeypatch.setenv("SHEETS_API_URL", url)
        started = time.monotonic()
        summary = execute(MANIFEST, RunRequest(), wh=loaded, core=CoreSettings())
        elapsed = time.monotonic() - started

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "reading Google Sheets" in summary.message
    assert warehouse_snapshot(loaded) == before


def test_a_silent_token_endpoint_fails_the_run_at_its_deadline(
    loaded: Warehouse, sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = warehouse_snapshot(loaded)
    key_file = Path(os.environ["GSERVICE_JSON"])  # the key the sandbox issued
    key = json.loads(key_file.read_text())
    with silent_server() as url:
        key["token_uri"] = key["token_uri"].replace(sheets_env.base_url, url)
        silent_key = key_file.with_name("silent.json")
        silent_key.write_text(json.dumps(key))
        monkeypatch.setenv("GSERVICE_JSON", str(silent_key))
        started = time.monotonic()
        summary = execute(MANIFEST, RunRequest(), wh=loaded, core=CoreSettings())
        elapsed = time.monotonic() - started

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "access token" in summary.message
    assert warehouse_snapshot(loaded) == before


def test_the_read_quota_is_not_waited_for_past_the_deadline() -> None:
    limiter = ReadLimiter(1, 60.0)
    deadline = Deadline(2.0, "qtickets_sheets run")
    with limiter.slot(deadline):
        pass

    started = time.monotonic()
    refused = pytest.raises(DeadlineExceeded, match="waiting for Google's read quota")
    with refused, limiter.slot(deadline):
        pass  # pragma: no cover - the slot is refused

    assert time.monotonic() - started < 1.0  # refused at once, not after the minute
