"""Field readers every source uses: a value is checked against the column it is staged into.

Each reader takes the raw value and the field's name and returns the value as it is staged, or
raises `BadValue` whose message starts with the field's name (`tickets_sold: not a whole
number: '1,5'`); that message becomes the reject's reason. Numbers are read by
`zakaz_common.normalize`; here they are bounded by their column's type (migrations 0003, 0005,
0007), text is trimmed, bounded and refused when it holds control characters, and ids are
held to the shape their upstream gives them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.normalize import clean_text, parse_decimal, parse_int, preview
from zakaz_common.redact import scrub
from zakaz_common.timeutil import parse_date


@dataclass(frozen=True)
class IntColumn:
    """A ClickHouse integer type: its name and the values it holds."""

    name: str
    low: int
    high: int


INT64: Final = IntColumn("Int64", -(2**63), 2**63 - 1)
"""Ticket counts and seats (`tickets_sold`, `tickets_total`, `tickets_left`)."""

UINT64: Final = IntColumn("UInt64", 0, 2**64 - 1)
"""Ad statistics counters (`impressions`, `clicks`)."""

UINT32: Final = IntColumn("UInt32", 0, 2**32 - 1)
"""Small counters (`row_no`, page numbers)."""

EVENT_NAME_MAX: Final = 500
"""A show's title with its subtitle fits in a few hundred characters; a 10 MB cell is a paste."""

NAME_MAX: Final = 500
"""Ad plan, ad group and campaign names (VK allows 255, Direct 255; room to spare)."""

CITY_MAX: Final = 100
"""The longest Russian city name is under 40 characters."""

ID_MAX: Final = 64
"""Upstream ids are at most 20 digits (UInt64); an id longer than this is not an id."""

UTM_MAX: Final = 500
"""A UTM tag is a slug; the engine takes tags of up to 200 characters itself, Python up to this."""

DATE_TEXT_MAX: Final = 64
"""The longest date text a sheet shows (`2025-01-15T14:30:00.000000+03:00` is 32)."""

RAW_CELL_MAX: Final = 1000
"""How much of one refused cell a reject keeps (`rejects.raw` keeps 4,000 characters in all);
cut before scrubbing, whose patterns take quadratic time on a 10 MB run of digits."""

_CONTROL: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""Characters no field may hold: C0/C1 controls (tab, newline and CR are whitespace, folded by
`clean_text`), bidirectional overrides (which make a name read differently than it is) and lone
surrogates (which no UTF-8 column can store)."""

_DIGITS: Final = re.compile(r"[0-9]+")
"""An id of digits, ASCII only (`str.isdigit` would take `²` and Arabic-Indic digits)."""


@contextmanager
def named(field: str) -> Iterator[None]:
    """Prefix the message of a `BadValue` raised inside with the field's name."""
    try:
        yield
    except BadValue as exc:
        raise BadValue(f"{field}: {exc}") from exc


def read_int(
    value: object, field: str, column: IntColumn = INT64, *, negative: bool = False
) -> int:
    """A whole number that fits `column`; negative ones only where `negative` allows them."""
    # try/except rather than `named`: a context manager costs more than the parse of an int.
    try:
        number = parse_int(value)
    except BadValue as exc:
        raise BadValue(f"{field}: {exc}") from exc
    if number < 0 and not negative:
        raise BadValue(f"{field}: cannot be negative: {preview(value)}")
    if not column.low <= number <= column.high:
        raise BadValue(f"{field}: out of range for {column.name}: {preview(value)}")
    return number


def read_money(value: object, field: str, *, negative: bool = False) -> Decimal:
    """An amount within Decimal(18, 2) (|x| < 10^16), in kopecks; negative only if allowed."""
    try:
        money = parse_decimal(value)
    except BadValue as exc:
        raise BadValue(f"{field}: {exc}") from exc
    if money < 0 and not negative:
        raise BadValue(f"{field}: cannot be negative: {preview(value)}")
    return money


def check_total(total: int, field: str, column: IntColumn = INT64) -> int:
    """A sum of values read one by one still within `column` (the warehouse would wrap it)."""
    if not column.low <= total <= column.high:
        raise BadValue(f"{field}: the total {preview(total)} is out of range for {column.name}")
    return total


def check_money_total(total: Decimal, field: str) -> Decimal:
    """A sum of amounts still within Decimal(18, 2)."""
    if total.copy_abs() >= Decimal(10) ** 16:
        raise BadValue(f"{field}: the total {preview(total)} is too large for Decimal(18, 2)")
    return total


def read_text(value: object, field: str, limit: int, *, required: bool = False) -> str:
    """Text trimmed (whitespace runs made one space), at most `limit` characters, no controls.

    Numbers are text too (a sheet shows a title `1984` as a number); None is empty; anything
    else (an object, a list, a checkbox) is refused.
    """
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        try:
            text = str(value)
        except ValueError:
            raise BadValue(f"{field}: longer than {limit} characters") from None
    else:
        raise BadValue(f"{field}: not text: {type(value).__name__} {preview(value)}")
    if not text:
        bad = None
    elif text.isprintable():
        # The common case, checked in C: no control, format or surrogate character at all.
        bad = None
    else:
        bad = _CONTROL.search(text)
    if bad is not None:
        raise BadValue(f"{field}: control character U+{ord(bad.group()):04X} in {preview(text)}")
    cleaned = clean_text(text)
    if len(cleaned) > limit:
        raise BadValue(f"{field}: longer than {limit} characters ({len(cleaned)})")
    if required and not cleaned:
        raise BadValue(f"{field}: empty")
    return cleaned


def read_digits(value: object, field: str, *, required: bool = True, limit: int = ID_MAX) -> str:
    """An id of digits (an int, or text of ASCII digits), as text; "" when absent and allowed."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise BadValue(f"{field}: {preview(value)} is not an id")
        text = str(value) if value.bit_length() <= 4 * limit else "-"
    elif isinstance(value, str):
        text = value.strip()
    elif value is None:
        text = ""
    else:
        raise BadValue(f"{field}: {type(value).__name__} {preview(value)} is not an id")
    if not text:
        if required:
            raise BadValue(f"{field}: missing")
        return ""
    if len(text) > limit:
        raise BadValue(f"{field}: longer than {limit} characters ({len(text)})")
    if not _DIGITS.fullmatch(text):
        raise BadValue(f"{field}: {preview(value)} is not an id of digits")
    return text


def read_date(value: object, field: str) -> date:
    """A date in any form `timeutil.parse_date` reads (the Moscow calendar date)."""
    if isinstance(value, str) and len(value) > DATE_TEXT_MAX:
        raise BadValue(f"{field}: too long for a date ({len(value)} characters)")
    with named(field):
        return parse_date(value)


def read_optional_date(value: object, field: str) -> date | None:
    """A date, or None for a blank cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return read_date(value, field)


def read_city(value: object, cities: CityDirectory, field: str = "city") -> str:
    """A city as staged: the canonical name of a known alias, else the text normalised."""
    text = read_text(value, field, CITY_MAX)
    return cities.canonical(text) if text else ""


def reject_cell(value: object) -> object:
    """A cell as a reject keeps it: text cut to `RAW_CELL_MAX` characters and scrubbed of PII."""
    if not isinstance(value, str):
        return value
    return scrub(value[:RAW_CELL_MAX]) + ("…" if len(value) > RAW_CELL_MAX else "")


def readable(readers: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """The values of the readers that succeed (a rejected row's key columns it still has)."""
    found: dict[str, Any] = {}
    for column, read in readers.items():
        try:
            found[column] = read()
        except BadValue:
            continue
    return found
