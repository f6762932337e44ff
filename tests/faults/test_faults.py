"""Every source against every fault its upstream can produce: nothing lost, nothing doubled.

Each case loads the source once from the sandbox through `zakaz run`, snapshots the BI views and
the source's facts, breaks the upstream through the sandbox's controls, runs `zakaz run` again
and checks the exit code, the status recorded in meta_job_runs, the alert opened, the rejects,
and the views. Every case also notes its outcome in the fault matrix (`conftest.matrix`).
"""

from __future__ import annotations

import pytest
from drivers import BAD_ROWS, SOURCES, STORMS, revoke, spoil, storm
from fault_support import Matrix, Run, Stand, differences, names_field, new_rejects, snapshot
from zakaz_common.runs import HELD_BACK, RUN_FAILED

BAD_ROW_CASES = [(source, fault) for source in SOURCES for fault in BAD_ROWS[source]]


def good_load(stand: Stand, source: str) -> Run:
    """The first, clean load every case starts from."""
    first = stand.run(source)
    assert (first.exit_code, first.status) == (0, "success"), first.output
    return first


@pytest.mark.parametrize(("source", "fault"), BAD_ROW_CASES)
def test_a_bad_row_is_rejected_naming_its_field_and_its_key_keeps_its_last_good_value(
    stand: Stand, matrix: Matrix, source: str, fault: str
) -> None:
    first = good_load(stand, source)
    before = snapshot(stand.wh, source)
    spoilt = spoil(stand, source, fault)

    faulted = stand.run(source)
    during = snapshot(stand.wh, source)
    spoilt.fix()
    mended = stand.run(source)
    expected = snapshot(stand.wh, source)
    fresh = new_rejects(faulted, first.rejects)
    matrix.add(
        faulted, fault, "as upstream, bad key kept" if during == expected else "WRONG", fresh
    )

    assert (faulted.exit_code, faulted.status) == (0, "success"), faulted.output
    assert len(fresh) == 1, [r["reason"] for r in faulted.rejects]
    assert names_field(fresh[0]["reason"], spoilt.fields), fresh[0]["reason"]
    assert faulted.opened_kinds() == [HELD_BACK], faulted.opened_kinds()
    assert faulted.summary.get("held_back", 0) >= 1, faulted.summary
    # The good change upstream is in; the spoilt key is what a clean run of the mended
    # upstream gives, so nothing of it was lost, shrunk or doubled.
    assert expected != before, "the good key's change did not reach the views"
    assert during == expected, differences(expected, during)
    assert (mended.exit_code, mended.status) == (0, "success"), mended.output
    assert HELD_BACK not in stand.open_kinds(source)


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

    assert (faulted.exit_code, faulted.status) == (1, "error"), faulted.output
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

    faulted = stand.run(source)
    after = snapshot(stand.wh, source)
    matrix.add(faulted, f"{kind} on every call", _views(before, after))

    assert (faulted.exit_code, faulted.status) == (1, "error"), faulted.output
    assert faulted.opened_kinds() == [RUN_FAILED], faulted.opened_kinds()
    assert after == before, differences(before, after)


@pytest.mark.parametrize("source", SOURCES)
def test_a_short_429_burst_is_retried_and_the_run_succeeds_with_the_same_views(
    stand: Stand, matrix: Matrix, source: str
) -> None:
    good_load(stand, source)
    before = snapshot(stand.wh, source)
    storm(stand, source, "429", 2)

    retried = stand.run(source)
    after = snapshot(stand.wh, source)
    matrix.add(retried, "429 on the next 2 calls", _views(before, after))

    assert (retried.exit_code, retried.status) == (0, "success"), retried.output
    assert retried.opened_kinds() == []
    assert RUN_FAILED not in stand.open_kinds(source)
    assert after == before, differences(before, after)


def _views(before: dict[str, object], after: dict[str, object]) -> str:
    return "unchanged" if after == before else "CHANGED"
