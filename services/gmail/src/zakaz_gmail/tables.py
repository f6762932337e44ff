"""Tables out of a report: the `<table>`s of an HTML body, the rows of a CSV file. Pure.

Cells come back as text with every run of whitespace (no-break spaces included) made one space,
which the number and date parsers read. Which table holds the sales is decided by `transform`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Final

from selectolax.lexbor import LexborHTMLParser, LexborNode

CSV_DELIMITERS: Final = (";", ",", "\t")
"""Separators tried in turn: `;` first, since a Russian Excel writes it (commas are decimals)."""


@dataclass(frozen=True)
class Table:
    """A table found in a message: where it came from, and its rows of cell texts."""

    name: str
    rows: list[list[str]]


def _cell_text(node: LexborNode) -> str:
    return " ".join((node.text(deep=True, separator=" ") or "").split())


def _own_rows(table: LexborNode) -> list[LexborNode]:
    """The table's rows, not those of tables nested in its cells."""
    own = []
    for row in table.css("tr"):
        parent = row.parent
        while parent is not None and parent.tag != "table":
            parent = parent.parent
        if parent is not None and parent.mem_id == table.mem_id:
            own.append(row)
    return own


def html_tables(html: str, source: str = "HTML body") -> list[Table]:
    """Every `<table>` of an HTML document, nested ones included, each with its own rows."""
    tree = LexborHTMLParser(html)
    tables = []
    for number, table in enumerate(tree.css("table"), start=1):
        rows = [
            [_cell_text(cell) for cell in row.iter() if cell.tag in ("td", "th")]
            for row in _own_rows(table)
        ]
        tables.append(Table(f"{source}, table {number}", rows))
    return tables


def csv_rows(text: str, delimiter: str) -> list[list[str]]:
    """The rows of CSV text split on `delimiter` (quotes as Excel writes them)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    return [[cell.strip() for cell in row] for row in reader]
