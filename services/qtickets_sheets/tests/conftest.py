"""Fixtures of the qtickets_sheets tests: the sandbox served over HTTP, the source's settings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from zakaz_common.testing import serving
from zakaz_sandbox.google_oauth import write_service_account_file

# The helper module beside the tests imports by name.
sys.path.insert(0, str(Path(__file__).parent))

from sheets_support import SPREADSHEET_ID, SheetsSandbox, sandbox_app


@pytest.fixture
def sandbox() -> Iterator[SheetsSandbox]:
    """A fresh sandbox (token endpoint + Sheets API) served on loopback."""
    app = sandbox_app()
    with serving(app) as base_url:
        yield SheetsSandbox(base_url, app)


@pytest.fixture
def sheets_env(
    sandbox: SheetsSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SheetsSandbox:
    """The source's settings pointed at the sandbox, with a service-account key it issued."""
    key = tmp_path / "google" / "sa.json"
    write_service_account_file(key, sandbox.base_url)
    monkeypatch.setenv("GSERVICE_JSON", str(key))
    for role in ("EVENTS", "INVENTORY", "SALES"):
        monkeypatch.setenv(f"SHEET_ID_{role}", SPREADSHEET_ID)
    monkeypatch.setenv("SHEETS_API_URL", sandbox.base_url)
    # Short waits keep retry tests fast; the policy (attempts, doubling) is the real one.
    monkeypatch.setenv("SHEETS_BACKOFF_SECONDS", "0.01")
    return sandbox
