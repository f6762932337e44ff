"""Fixtures of the vk_ads tests: the VK sandbox over real HTTP and the env that points at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from zakaz_common.testing import serving
from zakaz_sandbox import vk
from zakaz_sandbox.vk_data import ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET

# The helper module beside the tests (vk_support) imports by name.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def vk_sandbox() -> Iterator[str]:
    """A fresh VK Ads sandbox served on loopback; yields its base URL."""
    app = FastAPI()
    app.include_router(vk.create_router())
    with serving(app) as url:
        yield url


@pytest.fixture
def vk_env(vk_sandbox: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The advertiser's credentials and the sandbox URL as VK_* settings; fast retries."""
    monkeypatch.setenv("VK_API_URL", vk_sandbox)
    monkeypatch.setenv("VK_CLIENT_ID", ADVERTISER_CLIENT_ID)
    monkeypatch.setenv("VK_CLIENT_SECRET", ADVERTISER_CLIENT_SECRET)
    monkeypatch.setenv("VK_RETRY_WAIT_SECONDS", "0.01")
    return vk_sandbox
