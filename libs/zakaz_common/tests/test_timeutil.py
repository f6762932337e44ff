"""Moscow time: conversions, the many ways a date is written, and day windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial

import pytest
from zakaz_common.errors import BadValue
from zakaz_common.timeutil import (
    MSK,
    chunks,
    date_range,
    iso_msk,
    msk_date,
    now_msk,
    parse_date,
    parse_datetime,
    short_msk,
    to_msk,
    today_msk,
)

PLUS_5 = timezone(timedelta(hours=5))


#: A Moscow wall-clock datetime: msk(2025, 1, 15, 14, 30).
msk = partial(datetime, tzinfo=MSK)


def test_now_msk_is_the_current_moment_in_moscow() -> None:
    before = datetime.now(UTC)
    now = now_msk()
    after = datetime.now(UTC)
    assert now.tzinfo is MSK
    assert before <= now <= after


def test_today_msk_is_the_moscow_date() -> None:
    before = datetime.now(MSK).date()
    today = today_msk()
    after = datetime.now(MSK).date()
    assert today in {before, after}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            datetime(2025, 6, 3, 21, 0, tzinfo=UTC), msk(2025, 6, 4, 0, 0), id="aware_utc"
        ),
        pytest.param(datetime(2025, 6, 3, 21, 0), msk(2025, 6, 4, 0, 0), id="naive_is_utc"),
        pytest.param(
            datetime(2025, 6, 3, 12, 0, tzinfo=PLUS_5), msk(2025, 6, 3, 10, 0), id="plus_5"
        ),
        pytest.param(msk(2025, 6, 3, 12, 0), msk(2025, 6, 3, 12, 0), id="already_moscow"),
        # Moscow was UTC+4 in 2013; the zone database, not a fixed +3, must decide.
        pytest.param(datetime(2013, 6, 1, 12, 0), msk(2013, 6, 1, 16, 0), id="historic_plus_4"),
    ],
)
def test_to_msk(value: datetime, expected: datetime) -> None:
    converted = to_msk(value)
    assert converted == expected
    assert converted.tzinfo is MSK
    assert converted.replace(tzinfo=None) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(datetime(2025, 6, 3, 23, 30, tzinfo=UTC), date(2025, 6, 4), id="late_utc"),
        pytest.param(
            datetime(2025, 6, 3, 20, 59, 59), date(2025, 6, 3), id="naive_before_msk_midnight"
        ),
        pytest.param(datetime(2025, 6, 3, 21, 0), date(2025, 6, 4), id="naive_at_msk_midnight"),
        pytest.param(
            datetime(2025, 6, 4, 1, 0, tzinfo=PLUS_5), date(2025, 6, 3), id="east_of_moscow"
        ),
    ],
)
def test_msk_date(value: datetime, expected: date) -> None:
    assert msk_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("15.01.2025", msk(2025, 1, 15), id="dotted"),
        pytest.param("15.1.2025", msk(2025, 1, 15), id="dotted_no_leading_zero"),
        pytest.param("5.1.2025", msk(2025, 1, 5), id="dotted_single_digits"),
        pytest.param("15.01.25", msk(2025, 1, 15), id="two_digit_year"),
        pytest.param("15.01.99", msk(2099, 1, 15), id="two_digit_year_is_20xx"),
        pytest.param("15.01.2025 14:30", msk(2025, 1, 15, 14, 30), id="dotted_minutes"),
        pytest.param("15.01.2025 9:05", msk(2025, 1, 15, 9, 5), id="dotted_single_digit_hour"),
        pytest.param("15.01.2025 14:30:15", msk(2025, 1, 15, 14, 30, 15), id="dotted_seconds"),
        pytest.param("2025-01-15", msk(2025, 1, 15), id="iso_date"),
        pytest.param("2025-01-15 14:30", msk(2025, 1, 15, 14, 30), id="iso_space_minutes"),
        pytest.param("2025-01-15T14:30:15", msk(2025, 1, 15, 14, 30, 15), id="iso_naive_is_wall"),
        pytest.param("2025-06-03T23:30:00Z", msk(2025, 6, 4, 2, 30), id="iso_z"),
        pytest.param("2025-06-03t23:30:00z", msk(2025, 6, 4, 2, 30), id="iso_lowercase_z"),
        pytest.param("2025-01-15T14:30:00+05:00", msk(2025, 1, 15, 12, 30), id="iso_offset"),
        pytest.param(
            "2025-01-15T14:30:00+0500", msk(2025, 1, 15, 12, 30), id="iso_offset_no_colon"
        ),
        pytest.param("2025-01-15T14:30:00-02", msk(2025, 1, 15, 19, 30), id="iso_offset_hours"),
        pytest.param("2025-01-15 14:30:00 +03:00", msk(2025, 1, 15, 14, 30), id="iso_space_offset"),
        pytest.param(
            "2025-01-15T14:30:00.123456789+03:00",
            msk(2025, 1, 15, 14, 30, 0, 123456),
            id="iso_nanoseconds_truncated",
        ),
        pytest.param(45672, msk(2025, 1, 15), id="serial_int"),
        pytest.param(45672.5, msk(2025, 1, 15, 12, 0), id="serial_with_fraction"),
        pytest.param(45672.604166666664, msk(2025, 1, 15, 14, 30), id="serial_float_noise"),
        pytest.param("45672", msk(2025, 1, 15), id="serial_text"),
        pytest.param("45672,75", msk(2025, 1, 15, 18, 0), id="serial_decimal_comma"),
        pytest.param(Decimal("45672.25"), msk(2025, 1, 15, 6, 0), id="serial_decimal"),
        pytest.param(61, msk(1900, 3, 1), id="serial_after_lotus_leap_bug"),
        pytest.param(1, msk(1899, 12, 31), id="serial_lowest"),
        pytest.param(2958465, msk(9999, 12, 31), id="serial_highest"),
        pytest.param("\u00a015.01.2025 ", msk(2025, 1, 15), id="nbsp_around"),
        pytest.param("15.01.2025\u00a0\u00a014:30", msk(2025, 1, 15, 14, 30), id="nbsp_inside"),
        pytest.param(date(2025, 1, 15), msk(2025, 1, 15), id="date_object_is_midnight"),
        pytest.param(
            datetime(2025, 1, 15, 14, 30), msk(2025, 1, 15, 14, 30), id="naive_object_wall"
        ),
        pytest.param(
            datetime(2025, 6, 3, 23, 30, tzinfo=UTC), msk(2025, 6, 4, 2, 30), id="aware_object"
        ),
    ],
)
def test_parse_datetime(value: object, expected: datetime) -> None:
    parsed = parse_datetime(value)
    assert parsed == expected
    assert parsed.tzinfo is MSK
    assert parsed.replace(tzinfo=None) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("15.01.2025", date(2025, 1, 15), id="dotted"),
        pytest.param("15.01.25", date(2025, 1, 15), id="two_digit_year"),
        pytest.param("29.02.2024", date(2024, 2, 29), id="leap_day"),
        pytest.param("15.01.2025 23:59:59", date(2025, 1, 15), id="dotted_late_evening"),
        pytest.param("2025-06-03T23:30:00Z", date(2025, 6, 4), id="utc_late_is_next_msk_day"),
        pytest.param("2025-06-03T20:59:59Z", date(2025, 6, 3), id="utc_just_before_msk_midnight"),
        pytest.param("2025-06-04T01:00:00+05:00", date(2025, 6, 3), id="east_offset_previous_day"),
        pytest.param(45672.99, date(2025, 1, 15), id="serial_late_fraction"),
        pytest.param("45672,5", date(2025, 1, 15), id="serial_text_fraction"),
        pytest.param(" 2025-01-15 ", date(2025, 1, 15), id="spaces_around"),
        pytest.param(date(2024, 2, 29), date(2024, 2, 29), id="date_object"),
        pytest.param(datetime(2025, 1, 15, 23, 30), date(2025, 1, 15), id="naive_object_wall"),
        pytest.param(
            datetime(2025, 1, 15, 22, 30, tzinfo=UTC), date(2025, 1, 16), id="aware_object_utc"
        ),
    ],
)
def test_parse_date(value: object, expected: date) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param(" \u00a0 ", "empty", id="only_nbsp"),
        pytest.param(None, "empty", id="none"),
        pytest.param("31.02.2025", "impossible date '31.02.2025'", id="feb_31"),
        pytest.param("29.02.2025", "impossible date '29.02.2025'", id="feb_29_not_leap"),
        pytest.param("2025-13-01", "impossible date '2025-13-01'", id="month_13"),
        pytest.param("00.01.2025", "impossible date '00.01.2025'", id="day_zero"),
        pytest.param("15.01.2025 24:00", "impossible date", id="hour_24"),
        pytest.param("2025-01-15T10:00+25:00", "UTC offset +25:00", id="offset_too_big"),
        pytest.param("2025-01-15T10:00+03:99", "UTC offset +03:99", id="offset_minutes_99"),
        pytest.param("abc", "unknown date format 'abc'", id="word"),
        pytest.param("15/01/2025", "unknown date format", id="slashes"),
        pytest.param("15.01.025", "unknown date format", id="three_digit_year"),
        pytest.param("2025-1-15", "unknown date format", id="iso_single_digit_month"),
        pytest.param("Jan 15, 2025", "unknown date format", id="english_words"),
        pytest.param("15.01.2025 14", "unknown date format", id="hour_without_minutes"),
        pytest.param("45672,", "unknown date format", id="serial_trailing_comma"),
        pytest.param("-5", "unknown date format", id="negative_serial_text"),
        pytest.param("١٥.٠١.٢٠٢٥", "unknown date format", id="arabic_indic_digits"),
        pytest.param(0, "out of range", id="serial_zero"),
        pytest.param(-1, "out of range", id="serial_negative"),
        pytest.param(0.5, "out of range", id="serial_time_only"),
        pytest.param(2958466, "out of range", id="serial_past_9999"),
        pytest.param("20250115", "out of range", id="compact_date_is_huge_serial"),
        pytest.param(float("nan"), "out of range", id="serial_nan"),
        pytest.param(float("inf"), "out of range", id="serial_inf"),
        pytest.param(True, "not a date: 'True'", id="bool"),
        pytest.param([2025, 1, 15], "not a date: list", id="list"),
    ],
)
def test_parse_date_rejects(value: object, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        parse_date(value)
    assert reason in str(caught.value)
    with pytest.raises(BadValue):
        parse_datetime(value)


def test_rejection_message_truncates_long_values() -> None:
    with pytest.raises(BadValue) as caught:
        parse_date("x" * 80)
    message = str(caught.value)
    assert "'" + "x" * 50 + "…'" in message
    assert "x" * 51 not in message


@pytest.mark.parametrize(
    ("since", "to", "expected"),
    [
        pytest.param(date(2025, 1, 15), date(2025, 1, 15), [date(2025, 1, 15)], id="one_day"),
        pytest.param(
            date(2024, 2, 28),
            date(2024, 3, 1),
            [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)],
            id="across_leap_day",
        ),
        pytest.param(
            date(2024, 12, 31),
            date(2025, 1, 1),
            [date(2024, 12, 31), date(2025, 1, 1)],
            id="across_new_year",
        ),
        pytest.param(date(2025, 1, 16), date(2025, 1, 15), [], id="reversed_is_empty"),
    ],
)
def test_date_range(since: date, to: date, expected: list[date]) -> None:
    assert date_range(since, to) == expected


@pytest.mark.parametrize(
    ("since", "to", "days", "expected"),
    [
        pytest.param(
            date(2025, 1, 1),
            date(2025, 1, 10),
            3,
            [
                (date(2025, 1, 1), date(2025, 1, 3)),
                (date(2025, 1, 4), date(2025, 1, 6)),
                (date(2025, 1, 7), date(2025, 1, 9)),
                (date(2025, 1, 10), date(2025, 1, 10)),
            ],
            id="short_last_chunk",
        ),
        pytest.param(
            date(2025, 1, 1),
            date(2025, 1, 6),
            3,
            [(date(2025, 1, 1), date(2025, 1, 3)), (date(2025, 1, 4), date(2025, 1, 6))],
            id="exact_fit",
        ),
        pytest.param(
            date(2025, 1, 1),
            date(2025, 1, 3),
            1,
            [
                (date(2025, 1, 1), date(2025, 1, 1)),
                (date(2025, 1, 2), date(2025, 1, 2)),
                (date(2025, 1, 3), date(2025, 1, 3)),
            ],
            id="one_day_chunks",
        ),
        pytest.param(
            date(2025, 1, 1),
            date(2025, 1, 3),
            30,
            [(date(2025, 1, 1), date(2025, 1, 3))],
            id="window_longer_than_range",
        ),
        pytest.param(
            date(2024, 2, 27),
            date(2024, 3, 2),
            2,
            [
                (date(2024, 2, 27), date(2024, 2, 28)),
                (date(2024, 2, 29), date(2024, 3, 1)),
                (date(2024, 3, 2), date(2024, 3, 2)),
            ],
            id="across_leap_day",
        ),
        pytest.param(
            date(9999, 12, 30),
            date(9999, 12, 31),
            5,
            [(date(9999, 12, 30), date(9999, 12, 31))],
            id="end_of_calendar",
        ),
        pytest.param(date(2025, 1, 2), date(2025, 1, 1), 3, [], id="reversed_is_empty"),
    ],
)
def test_chunks(since: date, to: date, days: int, expected: list[tuple[date, date]]) -> None:
    assert chunks(since, to, days) == expected


@pytest.mark.parametrize("days", [pytest.param(0, id="zero"), pytest.param(-3, id="negative")])
def test_chunks_rejects_empty_windows(days: int) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        chunks(date(2025, 1, 1), date(2025, 1, 10), days)


@pytest.mark.parametrize("offset", [-12, -5, -1, 0, 1, 3, 5, 9, 12, 14])
@pytest.mark.parametrize("stamp", ["2026-03-01T00:30:00", "2026-12-31T23:59:59"])
def test_api_stamps_with_any_offset_are_the_moment_they_name(stamp: str, offset: int) -> None:
    text = f"{stamp}{'+' if offset >= 0 else '-'}{abs(offset):02d}:00"
    naive = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S")
    moment = naive.replace(tzinfo=timezone(timedelta(hours=offset)))

    assert parse_datetime(text) == moment
    assert parse_datetime(text).tzinfo == MSK
    assert parse_datetime(text.replace("T", " ")) == moment


def test_an_api_stamp_with_an_impossible_offset_is_a_bad_value() -> None:
    with pytest.raises(BadValue):
        parse_datetime("2026-03-01T00:30:00+25:00")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(msk(2026, 12, 3, 16, 35, 8), "2026-12-03T16:35:08+03:00", id="msk"),
        pytest.param(datetime(2026, 12, 3, 13, 35, 8), "2026-12-03T16:35:08+03:00", id="naive_utc"),
        pytest.param(
            datetime(2026, 12, 3, 13, 35, 8, tzinfo=UTC), "2026-12-03T16:35:08+03:00", id="utc"
        ),
        pytest.param(
            msk(2026, 12, 3, 16, 35, 8, 123456), "2026-12-03T16:35:08+03:00", id="micro_dropped"
        ),
        pytest.param(
            datetime(2026, 12, 3, 22, 0, tzinfo=UTC), "2026-12-04T01:00:00+03:00", id="next_day"
        ),
    ],
)
def test_iso_msk_is_one_format_for_every_moment(moment: datetime, expected: str) -> None:
    assert iso_msk(moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(msk(2026, 12, 3, 16, 35), "16:35", id="today"),
        pytest.param(msk(2026, 12, 2, 23, 59), "12-02 23:59", id="yesterday"),
        pytest.param(datetime(2026, 12, 3, 21, 30, tzinfo=UTC), "12-04 00:30", id="utc_tomorrow"),
        pytest.param(datetime(2026, 12, 2, 21, 30), "00:30", id="naive_utc_is_today_in_msk"),
        pytest.param(msk(2025, 12, 3, 16, 35), "2025-12-03 16:35", id="another_year"),
    ],
)
def test_short_msk_shows_only_what_differs_from_today(moment: datetime, expected: str) -> None:
    assert short_msk(moment, date(2026, 12, 3)) == expected
