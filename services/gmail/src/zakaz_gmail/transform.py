"""A report message → sales rows, or rejects with reasons (CONTRACT §5, §6). Pure: no I/O, no clock.

The sales table has the columns of the `Sales` worksheet: `date` (дата), `event_id`
(id мероприятия), `city` (город), `tickets_sold` (продано билетов), `revenue` (выручка), optional
`event_name` (название); headers matched case-insensitively after trimming, `ё` as `е`, in any
order; other columns are never read (whatever is typed there goes nowhere). Values as a
Russian locale writes them (`15.01.2025`, `1 800,00 ₽`). A totals row (`Итого`) is skipped.

Where the table is: CSV attachments (UTF-8 or cp1251, `;` `,` or tab separated) first, since
they are the machine-readable copy; only when no attachment holds the table, the `<table>`s of
the HTML body. An attachment that cannot be read (an Excel file, a CSV without the header) is
rejected with the message id and the reason when the message yields no sales otherwise.
Rows of one (date, event) within a message add up (each row is a sale record); across messages
the most recent message wins (`winning_rows`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.facts import SALES
from zakaz_common.fields import reject_cell
from zakaz_common.load import Reject
from zakaz_common.sales_table import (
    SALES_COLUMNS,
    columns_by_header,
    expected_headers,
    header_key,
    read_sales_row,
    sales_key,
)

from zakaz_gmail.mime import MailMessage, Part, decode_text
from zakaz_gmail.tables import CSV_DELIMITERS, Table, csv_rows, html_tables

SOURCE: Final = "gmail"
"""The contract's name of this source, in every row's `source`."""

HEADER_SCAN_ROWS: Final = 10
"""How far down a table its header row may be (a title row or two may come first)."""

_TOTAL_WORDS: Final = frozenset({"итого", "итого:", "всего", "всего:", "total", "total:"})
"""First cells of a totals row, which repeats the other rows' sums."""

Outcome = Literal["sales", "no_data", "rejected"]


_BY_HEADER: Final = columns_by_header(SALES_COLUMNS)
_EXPECTED: Final = expected_headers(SALES_COLUMNS)


def find_header(rows: Sequence[Sequence[str]]) -> tuple[int, dict[str, int]] | None:
    """The first row (of the first few) naming every required column, and where each column is."""
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        found: dict[str, int] = {}
        for position, cell in enumerate(row):
            column = _BY_HEADER.get(header_key(cell))
            if column is not None and column.name not in found:
                found[column.name] = position
        if all(c.name in found for c in SALES_COLUMNS if c.required):
            return index, found
    return None


@dataclass
class TableRows:
    """One sales table read: rows, rejects, and rows skipped as blank or totals."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    skipped: int = 0


def read_sales_table(
    table: Table, header: tuple[int, Mapping[str, int]], msg_id: str, cities: CityDirectory
) -> TableRows:
    """The sales rows of a table whose header is known; unreadable rows become rejects."""
    start, columns = header
    out = TableRows()
    for index in range(start + 1, len(table.rows)):
        row = table.rows[index]
        cells = {name: row[pos] if pos < len(row) else "" for name, pos in columns.items()}
        if not any(v.strip() for v in cells.values()):
            out.skipped += 1
            continue
        if header_key(cells.get("date", "")) in _TOTAL_WORDS or (
            row and header_key(row[0]) in _TOTAL_WORDS
        ):
            out.skipped += 1
            continue
        try:
            out.rows.append(read_sales_row(cells, cities))
        except BadValue as exc:
            raw: dict[str, Any] = {"src_msg_id": msg_id, "table": table.name, "row": index + 1}
            raw.update({k: reject_cell(v) for k, v in cells.items()})
            reason = f"message {msg_id}, {table.name} row {index + 1}: {exc}"
            key = sales_key(cells, SOURCE)
            out.rejects.append(Reject("sales", raw, reason, key=key, facts=(SALES.fact,)))
    return out


@dataclass
class MessageSales:
    """What one message yields: its sales rows (numbered), rejects, and what came of it."""

    msg_id: str
    internal_date_ms: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: Where the rows came from (`attachment sales.csv`, `HTML body, table 2`).
    tables: list[str] = field(default_factory=list)
    skipped_rows: int = 0
    #: Unreadable attachments not rejected because the message's sales came another way.
    ignored_attachments: int = 0

    @property
    def outcome(self) -> Outcome:
        """`sales` when a sales table was read, else `rejected` or `no_data`."""
        if self.tables:
            return "sales"
        return "rejected" if self.rejects else "no_data"


Found = tuple[Table, tuple[int, dict[str, int]]]
"""A table holding sales, with where its header is and which column holds each field."""


def _csv_table(part: Part) -> tuple[Found | None, str]:
    """The sales table of a CSV attachment, or None and why not."""
    name = f"attachment {part.filename or part.part_id}"
    text = decode_text(part.data or b"", part.charset)
    if not text.strip():
        return None, "it is empty"
    for delimiter in CSV_DELIMITERS:
        try:
            table = Table(name, csv_rows(text, delimiter))
        except csv.Error as exc:
            # A cell over the csv module's 128 KB limit: the file is refused, not the run.
            return None, f"it is not readable CSV ({exc})"
        if header := find_header(table.rows):
            return (table, header), ""
    return None, f"it has no header row with {_EXPECTED}"


def _html_tables(part: Part) -> list[Found]:
    """The `<table>`s of an HTML part that hold sales."""
    html = decode_text(part.data or b"", part.charset)
    tables = html_tables(html, f"HTML {part.filename or 'body'}")
    return [(t, header) for t in tables if (header := find_header(t.rows))]


def _attachment_reject(msg_id: str, part: Part, why: str) -> Reject:
    raw = {
        "src_msg_id": msg_id,
        "attachment": part.filename,
        "mime_type": part.mime_type,
        "size": part.size,
    }
    return Reject("attachment", raw, f"message {msg_id}: attachment '{part.filename}' {why}")


def message_sales(message: MailMessage, cities: CityDirectory) -> MessageSales:
    """Read a message's sales table(s): CSV attachments first, else the HTML body's tables."""
    result = MessageSales(message.msg_id, message.internal_date_ms)
    unreadable: list[Reject] = []
    found: list[Found] = []
    for part in message.parts:
        if part.kind == "csv":
            csv_found, why = _csv_table(part)
            if csv_found is None:
                why = f"cannot be read: {why}"
                unreadable.append(_attachment_reject(message.msg_id, part, why))
            else:
                found.append(csv_found)
        elif part.kind == "spreadsheet":
            why = (
                f"is a spreadsheet ({part.mime_type}), which is not read: only CSV attachments "
                "and HTML tables are; ask for the report as CSV"
            )
            unreadable.append(_attachment_reject(message.msg_id, part, why))
    if not found:
        for part in message.parts:
            if part.kind == "html" and part.data is not None:
                found.extend(_html_tables(part))
    for table, header in found:
        read = read_sales_table(table, header, message.msg_id, cities)
        result.tables.append(table.name)
        result.skipped_rows += read.skipped
        result.rejects.extend(read.rejects)
        for row in read.rows:
            row.update(source=SOURCE, src_msg_id=message.msg_id, row_no=len(result.rows))
            result.rows.append(row)
    if result.tables:
        result.ignored_attachments = len(unreadable)
    else:
        result.rejects.extend(unreadable)
    return result


SALES_FIELDS: Final = ("sale_date", "event_id", "event_name", "city", "tickets_sold", "revenue")
"""The business columns of a staged Gmail sales row."""


def winning_rows(candidates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For each (sale_date, event_id), the rows of the most recent message that has it.

    Candidates carry `src_msg_id`, `internal_date_ms` and the sales fields; the most recent is
    the greatest `internal_date_ms` (ties: the greater message id). Returns rows for the sales
    fact (`source = 'gmail'`); several rows of the winning message for one key add up there.
    """
    best: dict[tuple[Any, str], tuple[int, str]] = {}
    rows = list(candidates)
    for row in rows:
        key = (row["sale_date"], str(row["event_id"]))
        stamp = (int(row["internal_date_ms"]), str(row["src_msg_id"]))
        if key not in best or stamp > best[key]:
            best[key] = stamp
    winners = []
    for row in rows:
        key = (row["sale_date"], str(row["event_id"]))
        if best[key] == (int(row["internal_date_ms"]), str(row["src_msg_id"])):
            winner = {name: row[name] for name in SALES_FIELDS}
            winner["source"] = SOURCE
            winner["revenue"] = Decimal(winner["revenue"])
            winners.append(winner)
    return winners
