"""Fixtures of the `direct` tests: the Direct sandbox over real HTTP, and the source's settings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from zakaz_common.testing import serving
from zakaz_common.timeutil import today_msk
from zakaz_sandbox.direct import create_router
from zakaz_sandbox.direct_data import CLIENT_LOGIN, TOKEN

# The helper module beside the tests (direct_support) imports by name.
sys.path.insert(0, str(Path(__file__).parent))

from direct_support import DirectSandbox


@pytest.fixture
def sandbox() -> Iterator[DirectSandbox]:
    """A fresh Direct sandbox around today (Moscow), served on loopback."""
    app = FastAPI()
    app.include_router(create_router(today=today_msk()))
    with serving(app) as url:
        yield DirectSandbox(url)


@pytest.fixture
def direct_env(sandbox: DirectSandbox, monkeypatch: pytest.MonkeyPatch) -> DirectSandbox:
    """The source's settings pointing at the sandbox, with report waits cut to nothing."""
    monkeypatch.setenv("DIRECT_TOKEN", TOKEN)
    monkeypatch.setenv("DIRECT_CLIENT_LOGIN", CLIENT_LOGIN)
    monkeypatch.setenv("DIRECT_API_URL", sandbox.api_url)
    monkeypatch.setenv("DIRECT_MAX_WAIT_SECONDS", "0")
    return sandbox
