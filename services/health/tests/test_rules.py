"""The colour rules, one case per rule and the clashes between them."""

from __future__ import annotations

import pytest
from zakaz_health.rules import RULES, Signals, also, grade

ERROR_ALERT = (("run_failed", "error"),)
WARNING_ALERT = (("partial", "warning"),)


@pytest.mark.parametrize(
    ("name", "signals", "expected"),
    [
        ("all_fine", Signals(), ("green", "fresh", "fresh")),
        ("not_installed", Signals(installed=False), ("grey", "not installed", "not_installed")),
        ("failed", Signals(last_run_failed=True), ("red", "last run failed", "failed")),
        (
            "open_error_alert_while_fresh",
            Signals(alerts=ERROR_ALERT),
            ("red", "open alert: run failed", "error_alert"),
        ),
        (
            "worker_dead_while_fresh",
            Signals(worker_alive=False),
            ("red", "worker dead", "worker_dead"),
        ),
        (
            "stale",
            Signals(stale=True, late=True),
            ("red", "stale: data older than its budget", "stale"),
        ),
        (
            "failed_and_worker_dead_and_alert",
            Signals(last_run_failed=True, worker_alive=False, alerts=ERROR_ALERT),
            ("red", "last run failed", "failed"),
        ),
        (
            "warning_alert",
            Signals(alerts=WARNING_ALERT),
            ("amber", "open alert: partial", "warning_alert"),
        ),
        (
            "info_alert_is_not_green_either",
            Signals(alerts=(("note", "info"),)),
            ("amber", "open alert: note", "warning_alert"),
        ),
        (
            "error_alert_beats_an_earlier_warning",
            Signals(alerts=(*WARNING_ALERT, ("worker_dead", "error"))),
            ("red", "open alert: worker dead", "error_alert"),
        ),
        ("partial_run", Signals(partial=True), ("amber", "partial run", "partial")),
        ("late", Signals(late=True), ("amber", "running late", "late")),
        (
            "never_ran",
            Signals(ever_ran=False, ever_succeeded=False),
            ("amber", "never ran", "never_ran"),
        ),
        (
            "only_failures_are_red",
            Signals(ever_succeeded=False, last_run_failed=True),
            ("red", "last run failed", "failed"),
        ),
        (
            "no_success_yet",
            Signals(ever_succeeded=False),
            ("amber", "no successful run yet", "no_success"),
        ),
        (
            "worker_unknown_without_redis",
            Signals(worker_alive=None),
            ("amber", "worker unknown: Redis unreadable", "worker_unknown"),
        ),
        ("disabled_by_an_operator", Signals(enabled=False), ("amber", "disabled", "disabled")),
        (
            "disabled_ignores_stale_and_worker",
            Signals(enabled=False, stale=True, worker_alive=False),
            ("amber", "disabled", "disabled"),
        ),
        (
            "backup_on_standby_is_grey_not_amber",
            Signals(enabled=False, off_by_design=True, worker_alive=False, ever_ran=False),
            ("grey", "standby", "standby"),
        ),
        (
            "backup_switched_on_is_graded_like_any_source",
            Signals(enabled=True, off_by_design=True, worker_alive=False),
            ("red", "worker dead", "worker_dead"),
        ),
        (
            "backup_on_standby_with_a_failed_run_is_red",
            Signals(enabled=False, off_by_design=True, last_run_failed=True),
            ("red", "last run failed", "failed"),
        ),
        (
            "backup_on_standby_with_an_open_error_alert_is_red",
            Signals(enabled=False, off_by_design=True, alerts=ERROR_ALERT),
            ("red", "open alert: run failed", "error_alert"),
        ),
    ],
)
def test_grade(name: str, signals: Signals, expected: tuple[str, str, str]) -> None:
    found = grade(signals)
    assert (found.colour, found.reason, found.rule) == expected


@pytest.mark.parametrize(
    "signals",
    [
        Signals(worker_alive=False),
        Signals(alerts=ERROR_ALERT),
        Signals(alerts=WARNING_ALERT),
        Signals(alerts=(("x", "info"),)),
        Signals(last_run_failed=True),
        Signals(stale=True),
        Signals(partial=True),
        Signals(worker_alive=None),
    ],
)
def test_never_green_while_anything_is_wrong(signals: Signals) -> None:
    assert grade(signals).colour != "green"


def test_every_rule_has_a_unique_name() -> None:
    names = [rule[0] for rule in RULES]
    assert len(names) == len(set(names))


def test_what_else_is_wrong_is_listed_after_the_colour() -> None:
    signals = Signals(last_run_failed=True, worker_alive=False, alerts=ERROR_ALERT, late=True)
    assert also(signals) == ["open alert: run failed", "worker dead", "running late"]
    assert also(Signals()) == []
