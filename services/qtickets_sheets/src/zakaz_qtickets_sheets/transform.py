"""Worksheet rows → rows of the contract facts, or rejects with a reason (CONTRACT §5, §6).

Pure: no I/O and no clock. Headers are matched case-insensitively after trimming (inner spaces,
no-break ones too, collapsed; `ё` read as `е`), in any column order, English or Russian; extra
columns are ignored, and never read, so whatever people type in them (a buyer's phone in a
comment) goes nowhere. Values may be what a ru_RU sheet shows (`15.01.2025`, `1 800,00 ₽`) or
what UNFORMATTED_VALUE returns (numbers, serial dates). A tab without a required header is a
`StructuralError`; a row that cannot be read is a `Reject` naming the tab, row and column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue, StructuralError
from zakaz_common.facts import EVENTS, INVENTORY, SALES
from zakaz_common.fields import (
    EVENT_NAME_MAX,
    read_city,
    read_int,
    read_optional_date,
    read_text,
    readable,
    reject_cell,
)
from zakaz_common.load import FactSpec, Reject
from zakaz_common.sales_table import (
    CITY,
    EVENT_ID,
    EVENT_NAME,
    SALES_COLUMNS,
    Column,
    columns_by_header,
    expected_headers,
    header_key,
    read_event_id,
    read_sales_row,
    sales_key,
)

SOURCE: Final = "qtickets_sheets"
"""The contract's name of this source, in every row's `source`."""

EVENT_DATE = Column("event_date", "дата мероприятия")

EVENTS_COLUMNS: Final = (EVENT_ID, EVENT_NAME, EVENT_DATE, CITY)
INVENTORY_COLUMNS: Final = (
    EVENT_ID,
    EVENT_DATE,
    CITY,
    Column("tickets_total", "всего билетов"),
    Column("tickets_left", "осталось билетов"),
)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _letter(index: int) -> str:
    text, index = "", index + 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(65 + rest) + text
    return text


@dataclass(frozen=True)
class Header:
    """Where a tab's header row is (0-based index) and which column holds each field."""

    row_index: int
    columns: Mapping[str, int]


def find_header(tab: str, rows: Sequence[Sequence[Any]], columns: Sequence[Column]) -> Header:
    """Locate the header (the first non-empty row) and map its columns; StructuralError if not."""
    row_index = next((i for i, row in enumerate(rows) if not all(map(_is_blank, row))), None)
    expected = expected_headers(columns)
    if row_index is None:
        raise StructuralError(f"worksheet '{tab}' is empty: it needs a header row with {expected}")
    names = columns_by_header(columns)
    found: dict[str, int] = {}
    problems: list[str] = []
    for index, cell in enumerate(rows[row_index]):
        column = names.get(header_key(cell))
        if column is None:
            continue
        if column.name in found:
            problems.append(
                f"two '{column.name}' columns ({_letter(found[column.name])} and {_letter(index)})"
            )
        found[column.name] = index
    missing = [c for c in columns if c.required and c.name not in found]
    for column in missing:
        problems.append(f"no '{column.name}' column (header '{column.name}' or '{column.alias}')")
    if problems:
        raise StructuralError(
            f"worksheet '{tab}': {'; '.join(problems)} in header row {row_index + 1}; "
            f"it needs {expected}: fix the header row"
        )
    return Header(row_index, found)


@dataclass
class Parsed:
    """A tab read: rows for a fact, rejects with reasons, and how many rows were empty."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    blank: int = 0


def _name(value: object, field: str) -> str:
    return read_text(value, field, EVENT_NAME_MAX)


class RowCells:
    """The mapped cells of one row; `get` reads one with a field reader, which names the column
    in its refusal (`tickets_sold: not a whole number: '1,5'`)."""

    def __init__(self, cells: Mapping[str, Any]) -> None:
        self.cells = cells

    def get(self, name: str, read: Callable[[Any, str], Any] = _name) -> Any:
        """The cell of column `name` (blank when the row is short), read."""
        return read(self.cells.get(name, ""), name)


Keys = Callable[[RowCells], dict[str, Any]]
"""The key columns of a tab's fact that a rejected row still has, as they are staged."""


def _parse_tab(
    entity: str,
    tab: str,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[Column],
    build: Callable[[RowCells], dict[str, Any]],
    spec: FactSpec,
    keys: Keys,
) -> Parsed:
    header = find_header(tab, rows, columns)
    parsed = Parsed()
    for index in range(header.row_index + 1, len(rows)):
        row = rows[index]
        cells = {name: row[col] if col < len(row) else "" for name, col in header.columns.items()}
        if all(_is_blank(v) for v in cells.values()):
            parsed.blank += 1
            continue
        row_cells = RowCells(cells)
        try:
            parsed.rows.append(build(row_cells))
        except BadValue as exc:
            raw: dict[str, Any] = {"row": index + 1}
            raw.update({k: reject_cell(v) for k, v in cells.items()})
            parsed.rejects.append(
                Reject(
                    entity,
                    raw,
                    f"{tab} row {index + 1}: {exc}",
                    key=keys(row_cells),
                    facts=(spec.fact,),
                )
            )
    return parsed


def _event_keys(c: RowCells) -> dict[str, Any]:
    return {"source": SOURCE} | readable({"event_id": lambda: c.get("event_id", read_event_id)})


def _sales_keys(c: RowCells) -> dict[str, Any]:
    return sales_key(c.cells, SOURCE)


def _city(cities: CityDirectory) -> Callable[[Any, str], str]:
    return lambda value, field: read_city(value, cities, field)


def parse_events(tab: str, rows: Sequence[Sequence[Any]], cities: CityDirectory) -> Parsed:
    """The Events tab: one `dim_events_src` row per event (a later row of an id wins)."""
    return _parse_tab(
        "events",
        tab,
        rows,
        EVENTS_COLUMNS,
        lambda c: {
            "source": SOURCE,
            "event_id": c.get("event_id", read_event_id),
            "event_name": c.get("event_name"),
            "event_date": c.get("event_date", read_optional_date),
            "city": c.get("city", _city(cities)),
        },
        EVENTS,
        _event_keys,
    )


def parse_inventory(
    tab: str, rows: Sequence[Sequence[Any]], cities: CityDirectory, names: Mapping[str, str]
) -> Parsed:
    """The Inventory tab: seats per event (`updated_at` is stamped later by `stamp_inventory`)."""

    def build(c: RowCells) -> dict[str, Any]:
        event_id = c.get("event_id", read_event_id)
        return {
            "source": SOURCE,
            "event_id": event_id,
            "event_name": names.get(event_id, ""),
            "event_date": c.get("event_date", read_optional_date),
            "city": c.get("city", _city(cities)),
            # Int64 columns; a seat count is never negative.
            "tickets_total": c.get("tickets_total", read_int),
            "tickets_left": c.get("tickets_left", read_int),
        }

    return _parse_tab("inventory", tab, rows, INVENTORY_COLUMNS, build, INVENTORY, _event_keys)


def parse_sales(
    tab: str, rows: Sequence[Sequence[Any]], cities: CityDirectory, names: Mapping[str, str]
) -> Parsed:
    """The Sales tab: one row per sale record; rows of one (date, event) add up when loaded."""

    def build(c: RowCells) -> dict[str, Any]:
        row = read_sales_row(c.cells, cities)
        row["event_name"] = row["event_name"] or names.get(row["event_id"], "")
        return {"source": SOURCE, **row}

    return _parse_tab("sales", tab, rows, SALES_COLUMNS, build, SALES, _sales_keys)


@dataclass
class SheetRows:
    """All three tabs read, ready to stage."""

    events: Parsed
    inventory: Parsed
    sales: Parsed

    @property
    def rejects(self) -> list[Reject]:
        """Every tab's rejects."""
        return [*self.events.rejects, *self.inventory.rejects, *self.sales.rejects]


def parse_sheets(
    tabs: Mapping[str, tuple[str, Sequence[Sequence[Any]]]],
    cities: CityDirectory,
    known_names: Mapping[str, str] | None = None,
) -> SheetRows:
    """Read the `events`, `inventory` and `sales` tabs ((title, rows) each) completely.

    `known_names` are event names as last loaded: an event whose Events row is rejected now
    keeps its last good name on its inventory and sales rows.

    Every tab's header is checked before any row is used: one StructuralError names every
    problem of every tab, so a broken sheet fails the run before anything is staged.
    """
    problems = []
    for role, columns in (
        ("events", EVENTS_COLUMNS),
        ("inventory", INVENTORY_COLUMNS),
        ("sales", SALES_COLUMNS),
    ):
        title, rows = tabs[role]
        try:
            find_header(title, rows, columns)
        except StructuralError as exc:
            problems.append(str(exc))
    if problems:
        raise StructuralError("; ".join(problems))
    events = parse_events(*tabs["events"], cities)
    rejected = {str(r.key["event_id"]) for r in events.rejects if r.key and r.key.get("event_id")}
    names = {k: v for k, v in (known_names or {}).items() if k in rejected}
    names.update((r["event_id"], r["event_name"]) for r in events.rows if r["event_name"])
    return SheetRows(
        events=events,
        inventory=parse_inventory(*tabs["inventory"], cities, names),
        sales=parse_sales(*tabs["sales"], cities, names),
    )


INVENTORY_VALUES: Final = ("event_name", "event_date", "city", "tickets_total", "tickets_left")
"""What an inventory row says; `updated_at` moves only when one of these changes."""


def stamp_inventory(
    rows: Sequence[dict[str, Any]],
    previous: Mapping[str, tuple[tuple[Any, ...], datetime]],
    observed_at: datetime,
) -> int:
    """Set `updated_at`: kept from `previous` when nothing changed, else `observed_at`.

    An unchanged sheet then stages exactly the rows already loaded, so a re-run writes none.
    Returns how many rows changed.
    """
    changed = 0
    for row in rows:
        values = tuple(row[c] for c in INVENTORY_VALUES)
        before = previous.get(row["event_id"])
        if before is not None and before[0] == values:
            row["updated_at"] = before[1]
        else:
            row["updated_at"] = observed_at
            changed += 1
    return changed


def in_window(row: Mapping[str, Any], window: tuple[date, date] | None) -> bool:
    """Whether a sales row's date is inside the run's window (no window: every date)."""
    return window is None or window[0] <= row["sale_date"] <= window[1]
