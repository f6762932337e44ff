"""Fixtures of the qtickets_api tests: the QTickets sandbox over real HTTP and the env for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from zakaz_common.testing import serving
from zakaz_sandbox.qtickets import PREFIX, create_router
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN

# The helper module beside the tests (qtickets_support) imports by name.
sys.path.insert(0, str(Path(__file__).parent))

from qtickets_support import Sandbox


@pytest.fixture
def qt_sandbox() -> Iterator[Sandbox]:
    """A fresh QTickets sandbox (today's season) served on loopback."""
    app = FastAPI()
    app.include_router(create_router())
    with serving(app) as url:
        sandbox = Sandbox(url)
        yield sandbox
        sandbox.http.close()


@pytest.fixture
def qt_env(qt_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """QTICKETS_* settings pointing at the sandbox with its valid token."""
    monkeypatch.setenv("QTICKETS_BASE_URL", qt_sandbox.url + PREFIX)
    monkeypatch.setenv("QTICKETS_TOKEN", SANDBOX_TOKEN)
    return qt_sandbox
