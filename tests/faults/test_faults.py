"""Every source against every fault its upstream can produce: nothing lost, nothing doubled.

Each case loads the source once from the sandbox through `zakaz run`, snapshots the BI views and
the source's facts, breaks the upstream through the sandbox's controls, runs `zakaz run` again
and checks the exit code, the status recorded in meta_job_runs, the alert opened, the rejects,
and the views. Every case also notes its outcome in the fault matrix (`conftest.matrix`).
"""

from __future__ import annotations

import os
import time

import pytest
import redis
from drivers import BAD_ROWS, SOURCES, STORMS, faulted_answers, revoke, spoil, storm
from fault_support import (
    Matrix,
    Run,
    Snapshot,
    Stand,
    differences,
    names_field,
    new_rejects,
    snapshot,
)
from zakaz_common.deadline import override_variable
from zakaz_common.localserver import silent_server
from zakaz_common.locks import lock_key
from zakaz_common.runs import HELD_BACK, RUN_FAILED
from zakaz_qtickets_api.client import ATTEMPTS

BAD_ROW_CASES = [(source, fault) for source in SOURCES for fault in BAD_ROWS[source]]


def good_load(stand: Stand, source: str) -> Run:
    """The first, clean load every case starts from."""
    first = stand.run(source)
    assert (first.exit_code, first.status) == (0, "success"), first.why()
    assert first.summary["lock"] == "redis", first.summary  # the real redis-server holds it
    return first


@pytest.mark.parametrize(("source", "fault"), BAD_ROW_CASES)
def test_a_bad_row_is_rejected_naming_its_field_and_its_key_keeps_its_last_good_value(
    stand: Stand, matrix: Matrix, source: str, fault: str
) -> None:
    good_load(stand, source)
    # A second clean run: what the sandbox's own bad rows hold back once keys are live.
    steady = stand.run(source)
    steady_held = int(steady.summary.get("held_back", 0))
    before = snapshot(stand.wh, source)
    spoilt = spoil(stand, source, fault)

    faulted = stand.run(source)
    during = snapshot(stand.wh, source)
    spoilt.fix()
    mended = stand.run(source)
    expected = snapshot(stand.wh, source)
    fresh = new_rejects(faulted, steady.rejects)
    matrix.add(faulted, fault, _held_views(before, during, expected), fresh)

    assert (faulted.exit_code, faulted.status) == (0, "success"), faulted.why()
    # One spoilt row (a line cut short is cut on every day of the window: one per day).
    assert fresh, [r["reason"] for r in faulted.rejects]
    assert all(names_field(r["reason"], spoilt.fields) for r in fresh), fresh
    assert int(faulted.summary.get("held_back", 0)) > steady_held, faulted.summary
    assert HELD_BACK in faulted.open_after, faulted.open_after
    # The good change upstream is in; the spoilt key is what a clean run of the mended
    # upstream gives, so nothing of it was lost, shrunk or doubled.
    assert expected != before, "the good key's change did not reach the views"
    assert during == expected, differences(expected, during)
    assert (mended.exit_code, mended.status) == (0, "success"), mended.why()
    assert new_rejects(mended, steady.rejects) == [], "the mend upstream did not mend"
    assert int(mended.summary.get("held_back", 0)) == steady_held, mended.summary
    assert (HELD_BACK in stand.open_kinds(source)) == (steady_held > 0)


@pytest.mark.parametrize("source", SOURCES)
def test_wrong_credentials_fail_the_run_raise_an_alert_and_change_nothing(
    stand: Stand, matrix: Matrix, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_load(stand, source)
    before = snapshot(stand.wh, source)
    revoke(stand, source, monkeypatch)

    faulted = stand.run(source)
    after = snapshot(stand.wh, source)
    matrix.add(faulted, "wrong credentials (401/403)", _views(before, after))

    assert (faulted.exit_code, faulted.status) == (1, "error"), faulted.why()
    assert faulted.opened_kinds() == [RUN_FAILED], faulted.opened_kinds()
    assert after == before, differences(before, after)


@pytest.mark.parametrize("kind", STORMS)
@pytest.mark.parametrize("source", SOURCES)
def test_a_storm_longer_than_the_retries_fails_the_run_and_changes_nothing(
    stand: Stand, matrix: Matrix, source: str, kind: str
) -> None:
    good_load(stand, source)
    before = snapshot(stand.wh, source)
    storm(stand, source, kind, None)
    served = faulted_answers(stand, source)

    faulted = stand.run(source)
    after = snapshot(stand.wh, source)
    matrix.add(faulted, f"{kind} on every call", _views(before, after))

    assert faulted_answers(stand, source) - served >= 2, "the source never retried"
    assert (faulted.exit_code, faulted.status) == (1, "error"), faulted.why()
    assert faulted.opened_kinds() == [RUN_FAILED], faulted.opened_kinds()
    assert after == before, differences(before, after)


#: Where each source's upstream API is, as the sandbox settings name it (its token endpoint, if
#: any, stays on the sandbox: the API host alone goes silent).
API_URLS = {
    "qtickets_sheets": ("SHEETS_API_URL", ""),
    "qtickets_api": ("QTICKETS_BASE_URL", "/api/rest/v1"),
    "vk_ads": ("VK_API_URL", ""),
    "direct": ("DIRECT_API_URL", "/json/v5"),
    "gmail": ("GMAIL_API_URL", ""),
}

#: The deadline of a run against a silent upstream in these tests (seconds).
SILENT_DEADLINE = 3


@pytest.mark.parametrize("source", SOURCES)
def test_a_silent_upstream_fails_the_run_within_its_deadline_and_changes_nothing(
    stand: Stand, matrix: Matrix, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_load(stand, source)
    before = snapshot(stand.wh, source)
    variable, path = API_URLS[source]
    with silent_server() as url:
        monkeypatch.setenv(variable, url + path)
        monkeypatch.setenv(override_variable(source), str(SILENT_DEADLINE))
        started = time.monotonic()
        faulted = stand.run(source)
        took = time.monotonic() - started
    after = snapshot(stand.wh, source)
    matrix.add(faulted, f"silent upstream (deadline {SILENT_DEADLINE} s)", _views(before, after))

    assert (faulted.exit_code, faulted.status) == (1, "error"), faulted.why()
    assert "deadline" in faulted.why(), faulted.why()
    assert took < SILENT_DEADLINE + 10, took
    assert faulted.opened_kinds() == [RUN_FAILED], faulted.opened_kinds()
    assert after == before, differences(before, after)
    assert not redis.Redis.from_url(os.environ["REDIS_URL"]).exists(lock_key(source))


@pytest.mark.parametrize("source", SOURCES)
def test_short_bursts_are_retried_and_the_runs_succeed_with_the_same_views(
    stand: Stand, matrix: Matrix, source: str
) -> None:
    good_load(stand, source)
    # A second clean run: the alerts the sandbox's own bad rows raise once their keys are live.
    assert stand.run(source).status == "success"
    before = snapshot(stand.wh, source)
    outcomes = []
    # One stand for both bursts: neither may open an alert, so neither hides the other's.
    for kind in STORMS:
        storm(stand, source, kind, 2)
        served = faulted_answers(stand, source)
        retried = stand.run(source)
        after = snapshot(stand.wh, source)
        matrix.add(retried, f"{kind} on the next 2 calls", _views(before, after))
        outcomes.append((kind, retried, after, faulted_answers(stand, source) - served))

    for kind, retried, after, burst in outcomes:
        assert burst == 2, f"{kind}: the sandbox gave {burst} faulted answers, not the burst's 2"
        assert (retried.exit_code, retried.status) == (0, "success"), (kind, retried.why())
        assert retried.opened_kinds() == [], kind
        assert after == before, (kind, differences(before, after))
    assert RUN_FAILED not in stand.open_kinds(source)


def test_an_unreadable_report_attachment_is_rejected_never_silent(
    stand: Stand, matrix: Matrix
) -> None:
    good_load(stand, "gmail")
    before = snapshot(stand.wh, "gmail")
    day = stand.wh.scalar(
        "SELECT max(sale_date) FROM fact_qtickets_sales_daily WHERE source = 'gmail'"
    )
    stand.control("gmail/messages", {"kind": "xlsx", "sale_date": day.isoformat()})

    faulted = stand.run("gmail")
    after = snapshot(stand.wh, "gmail")
    matrix.add(
        faulted, "report attachment unreadable (xlsx)", _views(before, after), faulted.rejects
    )

    assert (faulted.exit_code, faulted.status) == (0, "success"), faulted.why()
    assert len(faulted.rejects) == 1, faulted.rejects
    assert names_field(faulted.rejects[0]["reason"], ("attachment", "xlsx")), faulted.rejects
    assert RUN_FAILED not in faulted.opened_kinds()
    assert after == before, differences(before, after)


def test_every_seat_map_failing_fails_the_qtickets_api_run_and_changes_nothing(
    stand: Stand, matrix: Matrix
) -> None:
    good_load(stand, "qtickets_api")
    before = snapshot(stand.wh, "qtickets_api")
    stand.control(
        "qtickets/faults", {"status": 503, "count": 100_000, "path": "/shows/", "retry_after": 0}
    )

    faulted = stand.run("qtickets_api")
    after = snapshot(stand.wh, "qtickets_api")
    matrix.add(faulted, "every seat map 503", _views(before, after))

    assert (faulted.exit_code, faulted.status) == (1, "error"), faulted.why()
    assert faulted.opened_kinds() == [RUN_FAILED], faulted.opened_kinds()
    assert after == before, differences(before, after)


def test_one_seat_map_failing_succeeds_with_a_warning_and_keeps_that_event(
    stand: Stand, matrix: Matrix
) -> None:
    good_load(stand, "qtickets_api")
    before = snapshot(stand.wh, "qtickets_api")
    # Every attempt at the first show's seat map fails; the next shows answer.
    stand.control(
        "qtickets/faults", {"status": 503, "count": ATTEMPTS, "path": "/shows/", "retry_after": 0}
    )

    partial = stand.run("qtickets_api")
    after = snapshot(stand.wh, "qtickets_api")
    matrix.add(partial, "one seat map 503 (all retries)", _views(before, after))

    assert (partial.exit_code, partial.status) == (0, "success"), partial.why()
    assert [a.severity for a in partial.opened] == ["warning"], partial.opened_kinds()
    assert after == before, differences(before, after)


def _views(before: Snapshot, after: Snapshot) -> str:
    if after == before:
        return "unchanged"
    return f"CHANGED ({', '.join(sorted(differences(before, after)))})"


def _held_views(before: Snapshot, during: Snapshot, expected: Snapshot) -> str:
    if during == expected and expected != before:
        return "as upstream, bad key kept"
    if during == before:
        return "unchanged (the good change did not land)"
    return f"WRONG ({', '.join(sorted(differences(expected, during)))})"
