"""Pure rules: a source's colour, and how durations read."""

from __future__ import annotations

from dataclasses import replace

import pytest
from zakaz_health import wording
from zakaz_health.queues import QueueState
from zakaz_health.state import RunInfo, SourceState

HOUR = 3600.0


def run(status: str) -> RunInfo:
    return RunInfo("r1", status, 0.0, 10.0, 5, 0, "", 10.0)


BASE = SourceState(
    source="direct",
    title="Yandex Direct",
    installed=True,
    enabled=True,
    budget_seconds=48 * HOUR,
    last_run=run("success"),
    last_verdict=run("success"),
    last_success_at=0.0,
    last_success_rows=5,
    rows_loaded_total=5,
    rows_rejected_total=0,
    last_data_date=None,
    days_behind=None,
    age_seconds=HOUR,
    queue=QueueState(depth=0, failed_jobs=0, workers=1, live_workers=1),
    open_alerts=0,
)


@pytest.mark.parametrize(
    ("name", "changes", "expected"),
    [
        ("fresh", {}, ("green", "fresh")),
        ("late_past_half_budget", {"age_seconds": 30 * HOUR}, ("amber", "running late")),
        (
            "stale_past_budget",
            {"age_seconds": 49 * HOUR},
            ("red", "stale: data older than its budget"),
        ),
        ("failed_while_fresh", {"last_verdict": run("error")}, ("red", "last run failed")),
        (
            "failed_then_running_again",
            {"last_run": run("running"), "last_verdict": run("error")},
            ("red", "last run failed"),
        ),
        (
            "never_ran",
            {"last_run": None, "last_verdict": None, "last_success_at": None, "age_seconds": None},
            ("amber", "never ran"),
        ),
        (
            "only_failures",
            {"last_verdict": run("error"), "last_success_at": None, "age_seconds": None},
            ("red", "last run failed"),
        ),
        (
            "only_dry_runs",
            {
                "last_run": run("dry_run"),
                "last_verdict": None,
                "last_success_at": None,
                "age_seconds": None,
            },
            ("amber", "no successful run yet"),
        ),
        (
            "disabled_even_if_stale",
            {"enabled": False, "age_seconds": 99 * HOUR},
            ("amber", "disabled"),
        ),
        ("not_installed", {"installed": False, "budget_seconds": None}, ("grey", "not installed")),
        (
            "worker_dead",
            {"queue": QueueState(depth=0, failed_jobs=0, workers=1, live_workers=0)},
            ("red", "worker dead"),
        ),
        ("redis_unread", {"queue": None}, ("amber", "worker unknown: Redis unreadable")),
        (
            "open_error_alert",
            {"alert_kinds": (("run_failed", "error"),)},
            ("red", "open alert: run failed"),
        ),
        (
            "open_warning_alert",
            {"alert_kinds": (("held_back", "warning"),)},
            ("amber", "open alert: held back"),
        ),
        (
            "partial_last_run",
            {"last_verdict": replace(run("success"), partial=True)},
            ("amber", "partial run"),
        ),
        ("backup_on_standby", {"enabled": False, "off_by_design": True}, ("grey", "standby")),
    ],
)
def test_grade(name: str, changes: dict[str, object], expected: tuple[str, str]) -> None:
    assert replace(BASE, **changes).grade == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0 s"),
        (59.4, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (86_400, "1 d"),
        (3 * 86_400 + 7200, "3 d 2 h"),
    ],
)
def test_duration_reads_in_two_units(seconds: float | None, text: str) -> None:
    assert wording.duration(seconds) == text


def test_moscow_time_is_written_with_its_zone() -> None:
    assert wording.moscow(0) == "1970-01-01 03:00 MSK"
    assert wording.moscow(0, zone=False) == "1970-01-01 03:00"
    assert wording.moscow(None) == "—"
