"""A Direct that accepts connections and never answers, or whose report queue stays full (or
whose report stays offline) for ever, fails the run at its deadline; the views stay as they
were."""

from __future__ import annotations

from typing import Any

import pytest
from direct_support import DirectSandbox
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunSummary
from zakaz_common.testing import (
    assert_stopped_at_deadline,
    silent_server,
    timed_run,
    warehouse_snapshot,
)
from zakaz_direct.manifest import MANIFEST

#: The test-short deadline of the failing runs (seconds).
DEADLINE = 3.0


def _run(wh: Warehouse) -> tuple[RunSummary, float]:
    return timed_run(MANIFEST, wh)


@pytest.fixture
def loaded(direct_env: DirectSandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """The default window loaded once, and the next runs' deadline cut short."""
    first, _ = _run(wh)
    assert first.status == "success", first.message
    assert wh.scalar("SELECT count() FROM fact_direct_daily") > 0
    monkeypatch.setenv("ZAKAZ_DEADLINE_DIRECT_SECONDS", str(DEADLINE))
    return wh


def test_a_silent_direct_fails_the_run_at_its_deadline(
    loaded: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = warehouse_snapshot(loaded)
    monkeypatch.setenv("DIRECT_READ_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DIRECT_MAX_WAIT_SECONDS", "0.1")
    with silent_server() as url:
        monkeypatch.setenv("DIRECT_API_URL", url + "/json/v5")
        summary, elapsed = _run(loaded)

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "asking Direct reports" in summary.message
    assert warehouse_snapshot(loaded) == before


@pytest.mark.parametrize(
    ("control", "body"),
    [
        pytest.param("queue", {"fill": 50, "drain_after": 1_000_000}, id="queue_full_for_ever"),
        pytest.param("config", {"offline_polls": 50, "retry_in": 1}, id="offline_for_ever"),
    ],
)
def test_a_report_that_never_comes_stops_polling_at_the_deadline(
    loaded: Warehouse,
    direct_env: DirectSandbox,
    monkeypatch: pytest.MonkeyPatch,
    control: str,
    body: dict[str, Any],
) -> None:
    before = warehouse_snapshot(loaded)
    asked_before = len(direct_env.requests("reports"))
    # `retryIn` is honoured up to this cap; the cap keeps the test short, not the deadline.
    monkeypatch.setenv("DIRECT_MAX_WAIT_SECONDS", "0.2")
    direct_env.control(control, body)

    summary, elapsed = _run(loaded)

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "waiting for Direct report" in summary.message
    # It did poll (every 0.2 s) until the deadline, and not after it.
    assert len(direct_env.requests("reports")) - asked_before > 3
    assert warehouse_snapshot(loaded) == before
