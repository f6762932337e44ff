"""PartTally: which parts of a run failed, and when that fails the run."""

from __future__ import annotations

import pytest
from zakaz_common.errors import PermanentError, TransientError, UpstreamError
from zakaz_common.parts import NAMES_SHOWN, PartsFailed, PartTally


def _tally(loaded: int, failed: list[tuple[str, Exception]]) -> PartTally:
    tally = PartTally("seat maps of shows")
    for _ in range(loaded):
        tally.loaded()
    for name, exc in failed:
        tally.failure(name, exc)
    return tally


@pytest.mark.parametrize(
    ("loaded", "failed", "warnings"),
    [
        pytest.param(0, [], [], id="nothing_tried"),
        pytest.param(3, [], [], id="all_loaded"),
        pytest.param(
            2,
            [("s1", TransientError("500"))],
            ["1 of 3 seat maps of shows failed: s1"],
            id="one_of_three_failed",
        ),
    ],
)
def test_settle_without_a_total_failure_returns_the_warnings(
    loaded: int, failed: list[tuple[str, Exception]], warnings: list[str]
) -> None:
    assert _tally(loaded, failed).settle() == warnings


@pytest.mark.parametrize(
    "transient", [pytest.param(True, id="all_transient"), pytest.param(False, id="one_permanent")]
)
def test_every_part_failing_raises_naming_them_and_saying_whether_to_retry(
    transient: bool,
) -> None:
    last: Exception = TransientError("503") if transient else PermanentError("404")
    tally = _tally(0, [("s1", TransientError("500 first")), ("s2", last)])

    with pytest.raises(PartsFailed) as caught:
        tally.settle()

    assert isinstance(caught.value, UpstreamError)
    assert str(caught.value) == "all 2 seat maps of shows failed: s1, s2 (first error: 500 first)"
    assert caught.value.transient is transient


def test_a_long_list_of_failures_names_the_first_ones_and_counts_the_rest() -> None:
    failed = [(f"s{i}", TransientError("500")) for i in range(NAMES_SHOWN + 5)]

    [warning] = _tally(1, failed).settle()

    assert warning.startswith(
        f"{NAMES_SHOWN + 5} of {NAMES_SHOWN + 6} seat maps of shows failed: s0, s1"
    )
    assert warning.endswith(f"s{NAMES_SHOWN - 1} and 5 more")
