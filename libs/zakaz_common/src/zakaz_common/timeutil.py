"""Moscow business time: the clock, and dates read the way sheets, APIs and people write them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Final
from zoneinfo import ZoneInfo

from zakaz_common import clock
from zakaz_common.errors import BadValue
from zakaz_common.normalize import preview

MSK: Final = ZoneInfo("Europe/Moscow")
"""The business time zone: every Date and DateTime in the warehouse is Moscow time."""

_SERIAL_EPOCH: Final = datetime(1899, 12, 30)
"""Day 0 of spreadsheet serials: Lotus 1-2-3's phantom 29.02.1900 moves it off the 31st."""

_SERIAL_MAX: Final = 2958465
"""Serial of 9999-12-31, the last day a spreadsheet (or Python) can represent."""

_DOTTED: Final = re.compile(
    r"(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4}|\d{2})"
    r"(?: (?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?",
    re.ASCII,
)
_ISO: Final = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r" ?(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE | re.ASCII,
)
#: How APIs write a moment (`2026-09-21T05:29:32+03:00`): read by the standard library directly.
_API_STAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}", re.ASCII
)
_SERIAL_TEXT: Final = re.compile(r"\d+(?:[.,]\d+)?", re.ASCII)


def now_msk() -> datetime:
    """The current moment as an aware Moscow datetime; the only clock in this module."""
    return clock.utcnow().astimezone(MSK)


def today_msk() -> date:
    """Today's date in Moscow."""
    return now_msk().date()


def to_msk(dt: datetime) -> datetime:
    """Convert to Moscow time; a naive value is taken as UTC."""
    # Naive means UTC here because ClickHouse drivers hand DateTime columns back naive in UTC;
    # a naive wall-clock value from a sheet goes through parse_datetime instead.
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(MSK)


def iso_msk(dt: datetime) -> str:
    """The one way zakaz writes a moment for people and JSON: `2026-12-03T16:35:08+03:00`."""
    return to_msk(dt).isoformat(timespec="seconds")


def short_msk(dt: datetime, today: date) -> str:
    """A moment for a narrow table: `16:35` today, `12-03 16:35` this year, else the date too."""
    moment = to_msk(dt)
    if moment.date() == today:
        return moment.strftime("%H:%M")
    if moment.year == today.year:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


def msk_date(dt: datetime) -> date:
    """The Moscow calendar date of a moment (naive means UTC, as in `to_msk`)."""
    return to_msk(dt).date()


def parse_datetime(value: object) -> datetime:
    """Read a date or date-time as an aware Moscow datetime; naive values are Moscow wall time."""
    try:
        return _parse(value)
    except BadValue:
        raise
    except (ValueError, OverflowError) as exc:
        raise BadValue(f"impossible date {preview(value)}: {exc}") from exc


def parse_date(value: object) -> date:
    """Read a date in any form `parse_datetime` accepts; the Moscow calendar date of it."""
    return parse_datetime(value).date()


def date_range(since: date, to: date) -> list[date]:
    """Every day from `since` to `to`, both included; empty when `since` is after `to`."""
    return [date.fromordinal(day) for day in range(since.toordinal(), to.toordinal() + 1)]


def chunks(since: date, to: date, days: int) -> list[tuple[date, date]]:
    """Consecutive inclusive windows of at most `days` days covering `since`..`to`."""
    if days < 1:
        raise ValueError(f"a chunk must span at least one day, got days={days}")
    last = to.toordinal()
    return [
        (date.fromordinal(start), date.fromordinal(min(start + days - 1, last)))
        for start in range(since.toordinal(), last + 1, days)
    ]


def _parse(value: object) -> datetime:
    # bool is an int; True as "serial day 1" would be a silent misreading.
    if isinstance(value, bool):
        raise BadValue(f"not a date: {preview(value)}")
    if isinstance(value, datetime):
        # A naive datetime object comes from a spreadsheet reader, so it is wall time.
        return value.replace(tzinfo=MSK) if value.tzinfo is None else value.astimezone(MSK)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=MSK)
    if isinstance(value, int | Decimal):
        return _from_serial(Decimal(value), value)
    if isinstance(value, float):
        # repr keeps what the sheet showed; Decimal(float) would carry binary noise into seconds.
        return _from_serial(Decimal(repr(value)), value)
    if value is None:
        raise BadValue("empty date")
    if isinstance(value, str) and _API_STAMP.fullmatch(value):
        return datetime.fromisoformat(value).astimezone(MSK)
    if not isinstance(value, str):
        raise BadValue(f"not a date: {type(value).__name__} {preview(value)}")
    text = " ".join(value.split())
    if not text:
        raise BadValue("empty date")
    if _SERIAL_TEXT.fullmatch(text):
        return _from_serial(Decimal(text.replace(",", ".")), value)
    if match := _DOTTED.fullmatch(text):
        year = int(match["y"])
        # Two-digit years in Russian sheets mean this century.
        if len(match["y"]) == 2:
            year += 2000
        return _wall_time(year, match, None)
    if match := _ISO.fullmatch(text):
        return _wall_time(int(match["y"]), match, match["tz"])
    raise BadValue(f"unknown date format {preview(value)}")


def _wall_time(year: int, match: re.Match[str], tz: str | None) -> datetime:
    fraction = (match.groupdict().get("f") or "").ljust(6, "0")[:6]
    naive = datetime(
        year,
        int(match["m"]),
        int(match["d"]),
        int(match["H"] or 0),
        int(match["M"] or 0),
        int(match["S"] or 0),
        int(fraction),
    )
    if tz is None:
        return naive.replace(tzinfo=MSK)
    return naive.replace(tzinfo=_offset(tz)).astimezone(MSK)


def _offset(text: str) -> timezone:
    if text.upper() == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset {text} is out of range")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def _from_serial(serial: Decimal, original: object) -> datetime:
    if not serial.is_finite() or not 1 <= serial <= _SERIAL_MAX:
        raise BadValue(
            f"spreadsheet serial date out of range 1..{_SERIAL_MAX}: {preview(original)}"
        )
    # Whole seconds: a sheet's times have second resolution, the rest is float noise.
    seconds = int((serial * 86400).to_integral_value(ROUND_HALF_UP))
    return (_SERIAL_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=MSK)
