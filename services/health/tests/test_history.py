"""Backfill chunks grouped into one history line; other runs stay one line each."""

from __future__ import annotations

from datetime import date, timedelta

from zakaz_health.history import BACKFILL_GAP_SECONDS, group
from zakaz_health.state import RunInfo

T0 = 1_760_000_000.0
DAY = date(2026, 9, 1)


def chunk(n: int, status: str = "success", *, at: float | None = None, rows: int = 10) -> RunInfo:
    """Chunk n of a backfill from DAY: one day, 30 s each, started 40 s apart."""
    start = at if at is not None else T0 + 40 * n
    day = DAY + timedelta(days=n)
    return RunInfo(
        f"c{n}-{start}",
        status,
        start,
        start + 30 if status != "running" else None,
        rows,
        1,
        "HTTP 503" if status == "error" else "",
        30.0,
        "backfill",
        day,
        day,
    )


def scheduled(start: float, status: str = "success") -> RunInfo:
    return RunInfo(f"s{start}", status, start, start + 5, 7, 0, "", 5.0, "schedule")


def test_consecutive_chunks_are_one_line_with_range_counts_and_rows() -> None:
    runs = [("vk_ads", chunk(n, "error" if n == 2 else "success")) for n in range(5)]

    lines = group(runs)

    assert len(lines) == 1
    line = lines[0]
    assert line.backfill and line.source == "vk_ads"
    assert (line.since, line.to) == (DAY, DAY + timedelta(days=4))
    assert (line.chunks, line.chunks_ok, line.chunks_failed) == (5, 4, 1)
    assert (line.rows_processed, line.rows_rejected) == (50, 5)
    assert line.status == "error"
    assert line.run.message == "HTTP 503"
    assert line.duration_seconds == 4 * 40 + 30


def test_a_gap_of_ten_minutes_starts_a_new_backfill() -> None:
    late = T0 + 40 + 30 + BACKFILL_GAP_SECONDS
    runs = [("direct", chunk(0)), ("direct", chunk(1)), ("direct", chunk(2, at=late))]

    lines = group(runs)

    assert [(line.chunks, line.since) for line in lines] == [
        (1, DAY + timedelta(days=2)),
        (2, DAY),
    ]


def test_just_under_the_gap_is_the_same_backfill() -> None:
    close = T0 + 30 + BACKFILL_GAP_SECONDS - 1
    assert len(group([("direct", chunk(0)), ("direct", chunk(1, at=close))])) == 1


def test_chunks_of_two_sources_are_two_backfills() -> None:
    runs = [("vk_ads", chunk(0)), ("direct", chunk(0)), ("vk_ads", chunk(1)), ("direct", chunk(1))]

    lines = group(runs)

    assert sorted((line.source, line.chunks) for line in lines) == [("direct", 2), ("vk_ads", 2)]


def test_other_runs_stay_single_and_in_time_order_around_a_backfill() -> None:
    runs = [
        ("vk_ads", scheduled(T0 - 100)),
        ("vk_ads", chunk(0)),
        ("qtickets_api", scheduled(T0 + 50)),
        ("vk_ads", chunk(1)),
        ("vk_ads", scheduled(T0 + 3600)),
    ]

    lines = group(runs)

    assert [(line.source, line.backfill, line.chunks) for line in lines] == [
        ("vk_ads", False, 1),
        ("qtickets_api", False, 1),
        ("vk_ads", True, 2),
        ("vk_ads", False, 1),
    ]


def test_a_backfill_still_running_is_running_without_an_end() -> None:
    line = group([("vk_ads", chunk(0)), ("vk_ads", chunk(1, "running"))])[0]

    assert (line.status, line.finished_at, line.duration_seconds) == ("running", None, None)
    assert (line.chunks_ok, line.chunks_failed) == (1, 0)
