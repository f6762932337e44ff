"""A QTickets that accepts connections and never answers fails the run at its deadline, and so
do seat maps that stall one after another; nothing the views show changes."""

from __future__ import annotations

import pytest
from qtickets_support import Sandbox
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunRequest, RunSummary
from zakaz_common.testing import (
    assert_stopped_at_deadline,
    silent_server,
    timed_run,
    warehouse_snapshot,
)
from zakaz_qtickets_api.manifest import MANIFEST
from zakaz_sandbox.qtickets import PREFIX

#: The test-short deadline of the silent runs (seconds).
DEADLINE = 3.0


def _run(wh: Warehouse) -> tuple[RunSummary, float]:
    return timed_run(MANIFEST, wh, RunRequest(days=7))


@pytest.fixture
def loaded(qt_env: Sandbox, wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """A week of QTickets loaded once, and the next runs' deadline cut short."""
    first, _ = _run(wh)
    assert first.status == "success", first.message
    assert wh.scalar("SELECT count() FROM v_inventory") > 0
    monkeypatch.setenv("ZAKAZ_DEADLINE_QTICKETS_API_SECONDS", str(DEADLINE))
    return wh


def test_a_silent_qtickets_fails_the_run_at_its_deadline(
    loaded: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = warehouse_snapshot(loaded)
    monkeypatch.setenv("QTICKETS_TIMEOUT_SECONDS", "1")
    with silent_server() as url:
        monkeypatch.setenv("QTICKETS_BASE_URL", url + PREFIX)
        summary, elapsed = _run(loaded)

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "reading QTickets /events" in summary.message
    assert warehouse_snapshot(loaded) == before


def test_seat_maps_that_each_stall_are_bounded_by_the_deadline_too(
    loaded: Warehouse, qt_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Events and orders answer; every seat map takes longer than the read timeout. One show's
    # failing seat map is tolerated, but not for ever: the run stops at its deadline.
    before = warehouse_snapshot(loaded)
    monkeypatch.setenv("QTICKETS_TIMEOUT_SECONDS", "0.3")
    qt_env.control("faults", {"delay": 2, "count": 1000, "path": "/shows"})

    summary, elapsed = _run(loaded)

    assert_stopped_at_deadline(loaded, summary, seconds=DEADLINE, elapsed=elapsed)
    assert "reading QTickets /shows/" in summary.message
    assert warehouse_snapshot(loaded) == before
