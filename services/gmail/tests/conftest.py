"""Fixtures of the gmail tests: the sandbox (token endpoint + Gmail API) served over HTTP, and
the source's settings pointed at it with OAuth files the sandbox issued."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from zakaz_common.testing import serving

# The helper module beside the tests imports by name.
sys.path.insert(0, str(Path(__file__).parent))

from gmail_support import GmailSandbox, sandbox_app


@pytest.fixture
def sandbox() -> Iterator[GmailSandbox]:
    """A fresh sandbox (Google's `/token` + the Gmail API) on loopback, for today."""
    app = sandbox_app()
    with serving(app) as base_url:
        yield GmailSandbox(base_url, app)


@pytest.fixture
def gmail_env(
    sandbox: GmailSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> GmailSandbox:
    """GMAIL_DIR with OAuth files the sandbox issued, GMAIL_API_URL at the sandbox, and every
    message from QTickets (the default query's 7 days would hide the older reports)."""
    sandbox.gmail_dir = tmp_path / "gmail"
    sandbox.write_gmail_dir()
    monkeypatch.setenv("GMAIL_DIR", str(sandbox.gmail_dir))
    monkeypatch.setenv("GMAIL_API_URL", sandbox.base_url)
    monkeypatch.setenv("GMAIL_QUERY", "from:qtickets")
    # Short waits keep retry tests fast; the policy (attempts, doubling) is the real one.
    monkeypatch.setenv("GMAIL_BACKOFF_SECONDS", "0.01")
    return sandbox
