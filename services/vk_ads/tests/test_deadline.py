"""A VK Ads that accepts connections and never answers (token endpoint included) fails the run
at its deadline, and the views stay as they were."""

from __future__ import annotations

import time

import pytest
from vk_support import run
from zakaz_common.clickhouse import Warehouse
from zakaz_common.testing import assert_stopped_at_deadline, silent_server, warehouse_snapshot

#: The test-short deadline of the silent run (seconds).
DEADLINE = 3.0


def test_a_silent_vk_fails_the_run_at_its_deadline(
    vk_env: str, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(wh)
    assert first.status == "success", first.message
    assert wh.scalar("SELECT count() FROM fact_vk_ads_daily") > 0
    before = warehouse_snapshot(wh)
    monkeypatch.setenv("ZAKAZ_DEADLINE_VK_ADS_SECONDS", str(DEADLINE))
    monkeypatch.setenv("VK_TIMEOUT_SECONDS", "1")

    with silent_server() as url:
        monkeypatch.setenv("VK_API_URL", url)
        started = time.monotonic()
        summary = run(wh)
        elapsed = time.monotonic() - started

    assert_stopped_at_deadline(wh, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "asking VK Ads /api/v2/oauth2/token.json" in summary.message
    assert warehouse_snapshot(wh) == before
