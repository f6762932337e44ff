"""The QTickets sales table (CONTRACT §5): its columns, how headers match, how an event id reads.

The `Sales` worksheet and the e-mailed sales reports share this shape; each source locates the
header its own way (a sheet's first row, a report's first matching row) on top of these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.fields import (
    EVENT_NAME_MAX,
    ID_MAX,
    named,
    read_city,
    read_date,
    read_int,
    read_money,
    read_text,
    readable,
)
from zakaz_common.normalize import clean_text, preview

_GROUPED_DIGITS: Final = re.compile(r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+")
"""An id shown with thousands grouped, as a spreadsheet or report formats numbers: `24 080`."""

_WHOLE_NUMBER_TEXT: Final = re.compile(r"(\d+)[.,]0+")
"""An id written as a number with zero decimals: `24080.0`, `24080,00`."""


@dataclass(frozen=True)
class Column:
    """A column a table must (or may) have: its contract name and the Russian alias."""

    name: str
    alias: str
    required: bool = True


EVENT_ID: Final = Column("event_id", "id мероприятия")
EVENT_NAME: Final = Column("event_name", "название")
CITY: Final = Column("city", "город")

#: The sales table's columns (worksheet `Sales` and e-mailed reports).
SALES_COLUMNS: Final = (
    Column("date", "дата"),
    EVENT_ID,
    CITY,
    Column("tickets_sold", "продано билетов"),
    Column("revenue", "выручка"),
    Column("event_name", "название", required=False),
)


def header_key(value: object) -> str:
    """How a header cell is compared: trimmed, spaces collapsed, case-folded, `ё` as `е`."""
    return clean_text(value).casefold().replace("ё", "е")


def columns_by_header(columns: Iterable[Column]) -> dict[str, Column]:
    """Every accepted header text (name or alias, as `header_key` folds it) → its column."""
    listed = list(columns)
    return {header_key(c.name): c for c in listed} | {header_key(c.alias): c for c in listed}


def expected_headers(columns: Iterable[Column]) -> str:
    """The required columns as a message names them: `date (дата), event_id (id мероприятия)…`."""
    return ", ".join(f"{c.name} ({c.alias})" for c in columns if c.required)


def parse_event_id(value: object) -> str:
    """An event id as text: `24080`, `24080.0`, `24 080` (grouped) all read `24080`."""
    if isinstance(value, bool):
        raise BadValue(f"not an event id: {preview(value)}")
    if isinstance(value, int):
        if value < 0 or value.bit_length() > 4 * ID_MAX:
            raise BadValue(f"not an event id: {preview(value)}")
        return str(value)
    if isinstance(value, float | Decimal):
        finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
        # NaN, infinities and 1e300 have no id; int() of the first two would raise.
        if not finite or not 0 <= value < 10**ID_MAX or value != int(value):
            raise BadValue(f"not an event id: {preview(value)}")
        return str(int(value))
    text = _id_text(value)
    if not text:
        raise BadValue("empty event_id")
    if _GROUPED_DIGITS.fullmatch(text):
        return re.sub(r"\D", "", text)
    whole = _WHOLE_NUMBER_TEXT.fullmatch(text)
    if whole:
        return whole.group(1)
    return text


def read_event_id(value: object, field: str = "event_id") -> str:
    """`parse_event_id`, its refusals named after the field (`event_id: empty event_id`)."""
    with named(field):
        return parse_event_id(value)


def _id_text(value: object) -> str:
    try:
        return read_text(value, "id", ID_MAX)
    except BadValue as exc:
        # The field's name is added by `read_event_id`.
        raise BadValue(str(exc).removeprefix("id: ")) from exc


def read_sales_row(cells: Mapping[str, Any], cities: CityDirectory) -> dict[str, Any]:
    """The sales fields of one table row (cells by column name; a missing cell is blank).

    Refusals name the table's column (`tickets_sold: cannot be negative: '-5'`): a sales row
    counts tickets sold and money taken, so neither may be negative.
    """
    return {
        "sale_date": read_date(cells.get("date", ""), "date"),
        "event_id": read_event_id(cells.get("event_id", "")),
        "event_name": read_text(cells.get("event_name", ""), "event_name", EVENT_NAME_MAX),
        "city": read_city(cells.get("city", ""), cities),
        "tickets_sold": read_int(cells.get("tickets_sold", ""), "tickets_sold"),
        "revenue": read_money(cells.get("revenue", ""), "revenue"),
    }


def sales_key(cells: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The key columns of the sales fact that a (rejected) row still has, as they are staged."""
    return {"source": source} | readable(
        {
            "sale_date": lambda: read_date(cells.get("date", ""), "date"),
            "event_id": lambda: read_event_id(cells.get("event_id", "")),
        }
    )
