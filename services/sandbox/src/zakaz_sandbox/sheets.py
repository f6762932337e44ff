"""Google Sheets API v4 sandbox: metadata, `values.get` and `values:batchGet` of one spreadsheet.

Paths, parameters, bodies and errors are Google's (shared/upstream-apis.md §4): bearer tokens
from the sandbox's `/token` (`google_oauth.py`, same app), both value render options, ragged
rows and trimmed trailing cells, no `values` key for an empty range, and a read quota of 60
requests a minute per user answered with 429 `RESOURCE_EXHAUSTED`.

Control endpoints (`/_sandbox/sheets/...`) change the sheet (set a cell, append or delete rows,
remove a header), inject faults (the next N reads answer 429 or 503; N = -1: every read), set
the quota, unshare the sheet, read the request log and the sheet's truth, and reset.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request

from zakaz_sandbox.google_oauth import (
    SHEETS_READONLY,
    GoogleApiError,
    GoogleErrorRoute,
    TokenInfo,
    require_token,
)
from zakaz_sandbox.sheets_data import Cell, Tab, Workbook, build_workbook

_SCOPES: Final = (
    SHEETS_READONLY,
    "https://www.googleapis.com/auth/spreadsheets",
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/drive",
)

_QUOTA_MESSAGE: Final = (
    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per "
    "user' of service 'sheets.googleapis.com' for consumer 'project_number:408511272345'."
)
_CELL: Final = re.compile(r"([A-Za-z]{0,3})(\d{0,7})")

Token = Annotated[TokenInfo, Depends(require_token(*_SCOPES))]


@dataclass
class SheetsState:
    """One router's spreadsheet, quota, faults and request log."""

    today: date | None
    workbook: Workbook
    shared: bool = True
    quota_reads: int = 60
    quota_window: float = 60.0
    rate_limit_next: int = 0
    retry_after: float | None = None
    server_errors_next: int = 0
    reads: dict[str, deque[float]] = field(default_factory=dict)
    #: The latest API requests with their status (bounded: a demo sandbox runs for days).
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, user: str) -> GoogleApiError | None:
        """Count one read of `user`, or the error Google answers instead (faults, then quota)."""
        with self.lock:
            if self.server_errors_next:
                self.server_errors_next -= 1 if self.server_errors_next > 0 else 0
                return GoogleApiError(503, "The service is currently unavailable.", "UNAVAILABLE")
            if self.rate_limit_next:
                self.rate_limit_next -= 1 if self.rate_limit_next > 0 else 0
                return _quota_error(self.retry_after)
            now = time.monotonic()
            window = self.reads.setdefault(user, deque())
            while window and window[0] <= now - self.quota_window:
                window.popleft()
            if len(window) >= self.quota_reads:
                return _quota_error(None)
            window.append(now)
            return None


def _quota_error(retry_after: float | None) -> GoogleApiError:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return GoogleApiError(
        429, _QUOTA_MESSAGE, "RESOURCE_EXHAUSTED", reason="RATE_LIMIT_EXCEEDED", headers=headers
    )


def _column(letters: str) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + ord(char) - 64
    return number


def _letters(column: int) -> str:
    text = ""
    while column:
        column, rest = divmod(column - 1, 26)
        text = chr(65 + rest) + text
    return text


def a1_title(title: str) -> str:
    """A sheet title as A1 notation writes it (quoted unless plain ASCII)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title):
        return title
    return "'" + title.replace("'", "''") + "'"


@dataclass(frozen=True)
class Span:
    """A resolved range: the tab and 0-based half-open row and column bounds."""

    tab: Tab
    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def a1(self) -> str:
        """The range as Google echoes it, e.g. `'Продажи'!A1:G1000`."""
        return (
            f"{a1_title(self.tab.title)}!{_letters(self.cols[0] + 1)}{self.rows[0] + 1}:"
            f"{_letters(self.cols[1])}{self.rows[1]}"
        )


def parse_range(text: str, workbook: Workbook) -> Span:
    """Resolve an A1 range (`'Sales'`, `Sales!A1:G10`, `'Sales'!10001:20000`, `A1:B2`)."""
    bad = GoogleApiError(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")
    title, cells = _split_range(text, workbook)
    tab = workbook.tabs.get(title) if title is not None else next(iter(workbook.tabs.values()))
    if tab is None:
        raise bad
    rows, cols = (0, tab.row_count), (0, tab.column_count)
    if cells:
        parts = cells.split(":")
        refs = [_CELL.fullmatch(p) for p in parts]
        if len(parts) > 2 or any(m is None or not (m[1] or m[2]) for m in refs):
            raise bad
        start, end = refs[0], refs[-1]
        if start is None or end is None:
            raise bad
        rows = (int(start[2]) - 1 if start[2] else 0, int(end[2]) if end[2] else tab.row_count)
        cols = (
            _column(start[1]) - 1 if start[1] else 0,
            _column(end[1]) if end[1] else tab.column_count,
        )
        if rows[0] < 0 or rows[0] >= rows[1] or cols[0] >= cols[1]:
            raise bad
        if rows[0] >= tab.row_count or cols[0] >= tab.column_count:
            raise GoogleApiError(
                400,
                f"Range ({text}) exceeds grid limits. Max rows: {tab.row_count}, "
                f"max columns: {tab.column_count}",
                "INVALID_ARGUMENT",
            )
    return Span(
        tab, (rows[0], min(rows[1], tab.row_count)), (cols[0], min(cols[1], tab.column_count))
    )


def _split_range(text: str, workbook: Workbook) -> tuple[str | None, str]:
    if text.startswith("'"):
        match = re.fullmatch(r"'((?:[^']|'')*)'(?:!(.*))?", text)
        if match is None:
            raise GoogleApiError(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")
        return match[1].replace("''", "'"), match[2] or ""
    if text in workbook.tabs:
        return text, ""
    if "!" in text:
        title, _, cells = text.rpartition("!")
        return title, cells
    return None, text


def render(
    span: Span, *, unformatted: bool, dates_as_strings: bool, columns: bool
) -> list[list[Any]]:
    """The values of a range as the API returns them: trailing empties trimmed."""
    grid: list[list[Any]] = []
    for row in span.tab.rows[span.rows[0] : span.rows[1]]:
        cells: list[Cell | None] = list(row[span.cols[0] : span.cols[1]])
        out: list[Any] = [
            ""
            if cell is None
            else cell.unformatted(dates_as_strings=dates_as_strings)
            if unformatted
            else cell.formatted()
            for cell in cells
        ]
        while out and out[-1] == "":
            out.pop()
        grid.append(out)
    if columns:
        width = max((len(r) for r in grid), default=0)
        grid = [[r[c] if c < len(r) else "" for r in grid] for c in range(width)]
        for line in grid:
            while line and line[-1] == "":
                line.pop()
    while grid and not grid[-1]:
        grid.pop()
    return grid


def _metadata(workbook: Workbook) -> dict[str, Any]:
    return {
        "spreadsheetId": workbook.spreadsheet_id,
        "properties": {
            "title": workbook.title,
            "locale": workbook.locale,
            "autoRecalc": "ON_CHANGE",
            "timeZone": workbook.time_zone,
        },
        "sheets": [
            {
                "properties": {
                    "sheetId": tab.sheet_id,
                    "title": tab.title,
                    "index": index,
                    "sheetType": "GRID",
                    "gridProperties": {
                        "rowCount": tab.row_count,
                        "columnCount": tab.column_count,
                    },
                }
            }
            for index, tab in enumerate(workbook.tabs.values())
        ],
        "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{workbook.spreadsheet_id}/edit",
    }


def _cell(value: Any, kind: str | None) -> Cell | None:
    """A cell from a control request: text, a number (optionally `grouped`/`money`), a date."""
    if value is None or value == "":
        return None
    if kind == "date":
        return Cell(date.fromisoformat(str(value)), "date")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise HTTPException(422, f"unsupported cell value {value!r}")
    if isinstance(value, str):
        return Cell(value, "text")
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if kind == "grouped":
        return Cell(number, "grouped")
    if kind == "money":
        return Cell(number, "money")
    return Cell(number, "number")


def create_router(*, today: date | None = None) -> APIRouter:
    """The Sheets API (`/v4/spreadsheets`) over one spreadsheet built for `today`."""
    state = SheetsState(today, build_workbook(today))
    router = APIRouter(route_class=GoogleErrorRoute)

    def serve(request: Request, token: TokenInfo, spreadsheet_id: str) -> Workbook:
        entry: dict[str, Any] = {"path": request.url.path, "query": str(request.url.query)}
        state.log.append(entry)
        refused = state.admit(token.subject)
        if refused is None and spreadsheet_id != state.workbook.spreadsheet_id:
            refused = GoogleApiError(404, "Requested entity was not found.", "NOT_FOUND")
        if refused is None and not state.shared:
            refused = GoogleApiError(
                403, "The caller does not have permission", "PERMISSION_DENIED"
            )
        entry["status"] = refused.code if refused else 200
        if refused is not None:
            raise refused
        return state.workbook

    def values(span: Span, render_option: str, dt_option: str, major: str) -> dict[str, Any]:
        if render_option not in ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"):
            raise GoogleApiError(
                400,
                f"Invalid value at 'value_render_option' (type.googleapis.com/"
                f'google.apps.sheets.v4.ValueRenderOption), "{render_option}"',
                "INVALID_ARGUMENT",
            )
        grid = render(
            span,
            unformatted=render_option != "FORMATTED_VALUE",
            dates_as_strings=dt_option == "FORMATTED_STRING",
            columns=major == "COLUMNS",
        )
        body: dict[str, Any] = {"range": span.a1, "majorDimension": major}
        if grid:
            body["values"] = grid
        return body

    @router.get("/v4/spreadsheets/{spreadsheet_id}")
    def get_spreadsheet(request: Request, token: Token, spreadsheet_id: str) -> dict[str, Any]:
        """`spreadsheets.get` without grid data: properties and sheets."""
        return _metadata(serve(request, token, spreadsheet_id))

    @router.get("/v4/spreadsheets/{spreadsheet_id}/values:batchGet")
    def batch_get(
        request: Request,
        token: Token,
        spreadsheet_id: str,
        ranges: Annotated[list[str], Query()],
        value_render: Annotated[str, Query(alias="valueRenderOption")] = "FORMATTED_VALUE",
        datetime_render: Annotated[str, Query(alias="dateTimeRenderOption")] = "SERIAL_NUMBER",
        major: Annotated[str, Query(alias="majorDimension")] = "ROWS",
    ) -> dict[str, Any]:
        """`spreadsheets.values.batchGet`: several ranges in one read."""
        workbook = serve(request, token, spreadsheet_id)
        spans = [parse_range(r, workbook) for r in ranges]
        return {
            "spreadsheetId": workbook.spreadsheet_id,
            "valueRanges": [values(s, value_render, datetime_render, major) for s in spans],
        }

    @router.get("/v4/spreadsheets/{spreadsheet_id}/values/{range_:path}")
    def get_values(
        request: Request,
        token: Token,
        spreadsheet_id: str,
        range_: str,
        value_render: Annotated[str, Query(alias="valueRenderOption")] = "FORMATTED_VALUE",
        datetime_render: Annotated[str, Query(alias="dateTimeRenderOption")] = "SERIAL_NUMBER",
        major: Annotated[str, Query(alias="majorDimension")] = "ROWS",
    ) -> dict[str, Any]:
        """`spreadsheets.values.get`: one range."""
        workbook = serve(request, token, spreadsheet_id)
        span = parse_range(range_, workbook)
        return values(span, value_render, datetime_render, major)

    _edit_routes(router, state)
    _fault_routes(router, state)
    return router


def _tab(state: SheetsState, body: dict[str, Any]) -> Tab:
    tab = state.workbook.tabs.get(str(body.get("tab")))
    if tab is None:
        raise HTTPException(404, f"no tab {body.get('tab')!r}; tabs: {list(state.workbook.tabs)}")
    return tab


_PREFIX: Final = "/_sandbox/sheets"
"""Where the control endpoints of the Sheets sandbox live."""


def _edit_routes(router: APIRouter, state: SheetsState) -> None:
    prefix = _PREFIX

    @router.get(prefix)
    def describe() -> dict[str, Any]:
        """The spreadsheet's id, title and tabs with their sizes."""
        wb = state.workbook
        tabs = {t.title: len(t.rows) for t in wb.tabs.values()}
        return {"spreadsheet_id": wb.spreadsheet_id, "title": wb.title, "tabs": tabs}

    @router.get(f"{prefix}/truth")
    def truth() -> dict[str, Any]:
        """What a correct reader concludes from the sheet as generated (before any edit)."""
        t = state.workbook.truth
        return {
            "events": [
                {"event_id": k, "event_name": n, "event_date": d.isoformat(), "city": c}
                for k, (n, d, c) in t.events.items()
            ],
            "inventory": [
                {
                    "event_id": k,
                    "tickets_total": tt,
                    "tickets_left": tl,
                    "event_date": d.isoformat(),
                    "city": c,
                }
                for k, (tt, tl, d, c) in t.inventory.items()
            ],
            "sales": [
                {
                    "sale_date": d.isoformat(),
                    "event_id": e,
                    "tickets_sold": n,
                    "revenue": str(r),
                    "rows": t.sales_rows[(d, e)],
                }
                for (d, e), (n, r) in sorted(t.sales.items())
            ],
            "bad_rows": [{"tab": tab, "row": row} for tab, row in t.bad_rows],
        }

    @router.post(f"{prefix}/cells")
    def set_cell(body: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
        """Set one cell, e.g. `{"tab": "Sales", "cell": "E5", "value": "2 400,00", "kind"?}`."""
        tab = _tab(state, body)
        match = _CELL.fullmatch(str(body.get("cell", "")))
        if match is None or not match[1] or not match[2]:
            raise HTTPException(422, "cell must be like E5")
        row, col = int(match[2]) - 1, _column(match[1]) - 1
        with state.lock:
            while len(tab.rows) <= row:
                tab.rows.append([])
            line = tab.rows[row]
            line.extend([None] * (col + 1 - len(line)))
            line[col] = _cell(body.get("value"), body.get("kind"))
        return {"cell": f"{_letters(col + 1)}{row + 1}"}

    @router.post(f"{prefix}/rows/delete")
    def delete_rows(body: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        """Delete rows by their 1-based numbers (rows below move up, as in Sheets)."""
        tab = _tab(state, body)
        doomed = {int(n) - 1 for n in body.get("rows", [])}
        with state.lock:
            tab.rows = [r for i, r in enumerate(tab.rows) if i not in doomed]
        return {"deleted": len(doomed)}

    @router.post(f"{prefix}/rows/append")
    def append_rows(body: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        """Append rows of JSON values (strings are typed text, numbers are numbers)."""
        tab = _tab(state, body)
        new = [[_cell(v, None) for v in row] for row in body.get("rows", [])]
        with state.lock:
            tab.rows.extend(new)
        return {"rows": len(tab.rows)}

    @router.post(f"{prefix}/headers/remove")
    def remove_header(body: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
        """Clear a header cell of a tab (matched case-insensitively)."""
        tab = _tab(state, body)
        wanted = str(body.get("header", "")).strip().lower()
        for i, cell in enumerate(tab.rows[0] if tab.rows else []):
            if cell is not None and str(cell.value).strip().lower() == wanted:
                tab.rows[0][i] = None
                return {"removed": f"{_letters(i + 1)}1"}
        raise HTTPException(404, f"no header {wanted!r} in {tab.title}")


def _fault_routes(router: APIRouter, state: SheetsState) -> None:
    prefix = _PREFIX

    @router.post(f"{prefix}/faults")
    def faults(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """`{"rate_limit": N, "retry_after"?: s, "server_errors": N}`; N = -1 means every read."""
        with state.lock:
            state.rate_limit_next = int(body.get("rate_limit", 0))
            state.retry_after = body.get("retry_after")
            state.server_errors_next = int(body.get("server_errors", 0))
        return {"rate_limit": state.rate_limit_next, "server_errors": state.server_errors_next}

    @router.post(f"{prefix}/quota")
    def quota(body: Annotated[dict[str, Any], Body()]) -> dict[str, float]:
        """Set the per-user read quota: `{"reads": 60, "window_seconds": 60}`."""
        with state.lock:
            state.quota_reads = int(body.get("reads", 60))
            state.quota_window = float(body.get("window_seconds", 60))
            state.reads.clear()
        return {"reads": state.quota_reads, "window_seconds": state.quota_window}

    @router.post(f"{prefix}/sharing")
    def sharing(body: Annotated[dict[str, Any], Body()]) -> dict[str, bool]:
        """Share or unshare the spreadsheet with the service accounts (`{"shared": false}`)."""
        state.shared = bool(body.get("shared", True))
        return {"shared": state.shared}

    @router.get(f"{prefix}/requests")
    def requests_log() -> dict[str, Any]:
        """Every API request served, with its status."""
        log = list(state.log)
        return {
            "requests": log,
            "served": sum(1 for e in log if e.get("status") == 200),
            "throttled": sum(1 for e in log if e.get("status") == 429),
        }

    @router.post(f"{prefix}/reset")
    def reset() -> dict[str, bool]:
        """Rebuild the spreadsheet and clear faults, quota counters and the log."""
        with state.lock:
            state.workbook = build_workbook(state.today)
            state.shared, state.rate_limit_next, state.server_errors_next = True, 0, 0
            state.quota_reads, state.quota_window, state.retry_after = 60, 60.0, None
            state.reads.clear()
            state.log.clear()
        return {"reset": True}
