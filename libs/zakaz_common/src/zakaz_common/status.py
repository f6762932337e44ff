"""Per-source status for `zakaz status`: last run, freshness and queue state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from rich import box
from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from zakaz_common.clickhouse import Warehouse
from zakaz_common.locks import lock_key, redis_available, redis_client
from zakaz_common.manifest import CONTRACT_SOURCES, SourceManifest
from zakaz_common.settings import redact_dsn
from zakaz_common.timeutil import short_msk

RedisState = Literal["up", "down", "unused"]
"""Redis as `zakaz status` found it: answering; configured but not answering; not configured
(REDIS_URL unset) and not answering, so runs are inline only and there is no queue to show."""


@dataclass(frozen=True)
class SourceStatus:
    """One source's state as the operator sees it."""

    source: str
    installed: bool
    last_status: str | None
    last_started_at: datetime | None
    last_rows: int | None
    last_success_at: datetime | None
    last_data_date: date | None
    days_behind: int | None
    last_error: str | None
    queued: int | None
    locked: bool | None
    #: Whether the queue columns mean anything: `queued`/`locked` are None unless "up".
    redis: RedisState = "up"


def source_statuses(
    wh: Warehouse,
    manifests: Iterable[SourceManifest],
    redis_url: str,
    *,
    redis_expected: bool = True,
) -> list[SourceStatus]:
    """Status of every contract source plus any other installed one.

    `redis_expected` says whether a Redis (and so a scheduler) is configured: when it does not
    answer, the state is "down" if it is, "unused" if not.
    """
    installed = {m.name for m in manifests}
    names = list(CONTRACT_SOURCES) + sorted(installed - set(CONTRACT_SOURCES))
    fresh = {r["source"]: r for r in wh.dicts("SELECT * FROM v_data_freshness")}
    last: dict[str, dict[str, Any]] = {
        r["job"]: r
        for r in wh.dicts(
            "SELECT job, argMax(status, tuple(started_at, _ver)) AS last_status, "
            "max(started_at) AS last_started, argMax(rows_processed, tuple(started_at, _ver)) AS rows, "
            "argMax(message, tuple(started_at, _ver)) AS message "
            "FROM meta_job_runs GROUP BY job"
        )
    }
    client = redis_client(redis_url, timeout=0.5)
    up = redis_available(client)
    state: RedisState = "up" if up else ("down" if redis_expected else "unused")
    result = []
    for name in names:
        f = fresh.get(name, {})
        run = last.get(name, {})
        queued = locked = None
        if up:
            # RQ keeps a queue's job ids in the list rq:queue:<name>.
            queued = int(client.llen(f"rq:queue:{name}"))
            locked = bool(client.exists(lock_key(name)))
        result.append(
            SourceStatus(
                source=name,
                installed=name in installed,
                last_status=run.get("last_status"),
                last_started_at=run.get("last_started"),
                last_rows=run.get("rows"),
                last_success_at=f.get("last_success_at"),
                last_data_date=f.get("last_data_date"),
                days_behind=f.get("days_behind"),
                # v_data_freshness knows the contract sources; another one's error is its run's.
                last_error=f.get("last_error")
                or (run.get("message") if run.get("last_status") == "error" else None)
                or None,
                queued=queued,
                locked=locked,
                redis=state,
            )
        )
    return result


# --- the table people read ------------------------------------------------------------------

_COLOURS: Final = {"success": "green", "error": "red", "running": "cyan", "dry_run": "blue"}


@dataclass(frozen=True)
class _Column:
    header: str
    cells: list[Text]
    #: Columns go, lowest first, until the table fits the terminal; None: always kept.
    drop: int | None = None
    justify: Literal["left", "right"] = "left"


def status_view(
    rows: Sequence[SourceStatus], *, where: str, redis_url: str, width: int, today: date
) -> Group:
    """`zakaz status` as a table that fits `width` columns, and notes under it.

    Nothing is cut short: columns are dropped by priority (queue, behind, started, rows) until
    the rest fits, moments are shortened to what differs from today, and error messages go
    under the table, whole, where they can wrap.
    """
    redis_up = any(r.redis == "up" for r in rows)
    columns = [
        _Column("source", [_source(r) for r in rows]),
        _Column("last run", [_state(r.last_status) for r in rows]),
        _Column("started", [_moment(r.last_started_at, today) for r in rows], drop=3),
        _Column("rows", [_plain(r.last_rows) for r in rows], drop=4, justify="right"),
        _Column("last success", [_moment(r.last_success_at, today) for r in rows]),
        _Column("data up to", [_day(r.last_data_date, today) for r in rows]),
        _Column("behind", [_plain(r.days_behind) for r in rows], drop=2, justify="right"),
    ]
    if redis_up:
        columns.append(_Column("queue", [_queue(r) for r in rows], drop=1, justify="right"))
    table = _fitting(columns, len(rows), width)
    title = Text(f"zakaz status — {where}", style="bold")
    return Group(
        title, table, Text("times are Moscow time (MSK)", style="dim"), *_notes(rows, redis_url)
    )


def _fitting(columns: list[_Column], count: int, width: int) -> Table:
    """The table of the most important columns that fits in `width` without cutting a cell."""
    kept = list(columns)
    while True:
        # The box's blank column rule and one space of padding: two spaces between columns.
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        for c in kept:
            table.add_column(c.header, justify=c.justify, no_wrap=True, overflow="fold")
        for i in range(count):
            table.add_row(*(c.cells[i] for c in kept))
        droppable = [c for c in kept if c.drop is not None]
        measured = Measurement.get(_MEASURE, _MEASURE.options.update(width=10_000), table)
        if measured.maximum <= width:
            return table
        if not droppable:
            # Narrower than the columns that always stay: cells wrap rather than lose letters.
            for column in table.columns[1:]:
                column.no_wrap = False
            return table
        kept.remove(min(droppable, key=lambda c: c.drop or 0))


_MEASURE: Final = Console(width=10_000, color_system=None)


def _notes(rows: Sequence[SourceStatus], redis_url: str) -> list[Text]:
    notes: list[Text] = []
    if any(r.redis == "unused" for r in rows):
        notes.append(
            Text(
                "no scheduler: inline runs only (REDIS_URL is not set and nothing answers at "
                f"{redact_dsn(redis_url)}; `zakaz up` runs the scheduler)",
                style="dim",
            )
        )
    elif any(r.redis == "down" for r in rows):
        notes.append(
            Text(
                f"redis down at {redact_dsn(redis_url)}: queue and lock state unknown, "
                "scheduled runs are not being started; check REDIS_URL and the redis server",
                style="yellow",
            )
        )
    missing = [r.source for r in rows if not r.installed]
    if missing:
        notes.append(Text(f"not installed here: {', '.join(missing)}", style="dim"))
    for r in rows:
        if r.last_error:
            notes.append(Text(f"{r.source} error: {r.last_error}", style="red"))
    return notes


def _source(row: SourceStatus) -> Text:
    return Text(row.source, style="" if row.installed else "dim")


def _state(status: str | None) -> Text:
    return Text(status or "—", style=_COLOURS.get(status or "", ""))


def _moment(value: datetime | None, today: date) -> Text:
    return Text("—" if value is None else short_msk(value, today))


def _day(value: date | None, today: date) -> Text:
    if value is None:
        return Text("—")
    return Text(value.isoformat()[5:] if value.year == today.year else value.isoformat())


def _plain(value: object) -> Text:
    return Text("—" if value is None else str(value))


def _queue(row: SourceStatus) -> Text:
    if row.queued is None:
        return Text("—")
    return Text(f"{row.queued}{' locked' if row.locked else ''}")
