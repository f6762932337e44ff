"""The page's run history: one line per run, and one line per backfill however many chunks.

`zakaz backfill` records each day chunk as its own run (`trigger = 'backfill'`, its window in
`params`). A 90-day backfill would push every other run off the page, so chunks of one source
that follow each other with less than `BACKFILL_GAP_SECONDS` between them are one line: the
range of dates, chunks ok and failed, rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from zakaz_common.clickhouse import Warehouse

from zakaz_health.state import RunInfo

#: Chunks of one source closer than this (end of one to start of the next) are one backfill.
BACKFILL_GAP_SECONDS = 10 * 60

#: The trigger `zakaz backfill` records its chunks with.
BACKFILL_TRIGGER = "backfill"

#: Run rows read for the history: enough for a long backfill and the runs around it.
HISTORY_ROWS = 600

_HISTORY_SQL = """
SELECT run_id, job, status, toUnixTimestamp(started_at) AS started,
       toUnixTimestamp(finished_at) AS finished, rows_processed, rows_rejected, message, metrics,
       params, trigger
FROM meta_job_runs
ORDER BY started_at DESC, _ver DESC
LIMIT {limit:UInt32}
"""


@dataclass(frozen=True)
class HistoryLine:
    """One line of the history: a run, or a whole backfill."""

    source: str
    #: The run (or for a backfill, its last chunk that failed, else its last chunk).
    run: RunInfo
    started_at: float
    finished_at: float | None
    status: str
    rows_processed: int
    rows_rejected: int
    #: For a backfill: its chunks, the range they covered, how many succeeded and failed.
    chunks: int = 1
    chunks_ok: int = 0
    chunks_failed: int = 0
    since: date | None = None
    to: date | None = None

    @property
    def backfill(self) -> bool:
        """Whether the line stands for the chunks of a backfill."""
        return self.run.trigger == BACKFILL_TRIGGER

    @property
    def duration_seconds(self) -> float | None:
        """A run's own duration; a backfill's from its first start to its last end."""
        if not self.backfill:
            return self.run.duration_seconds
        if self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


def read_runs(wh: Warehouse, limit: int = HISTORY_ROWS) -> list[tuple[str, RunInfo]]:
    """The latest run rows of every source, newest first, as (source, run)."""
    return [(row["job"], RunInfo.from_row(row)) for row in wh.dicts(_HISTORY_SQL, {"limit": limit})]


def group(runs: Iterable[tuple[str, RunInfo]]) -> list[HistoryLine]:
    """History lines, newest first: backfill chunks of a source close in time become one line."""
    lines: list[HistoryLine] = []
    open_group: dict[str, list[RunInfo]] = {}
    for source, run in sorted(runs, key=lambda pair: pair[1].started_at):
        if run.trigger != BACKFILL_TRIGGER:
            lines.append(_single(source, run))
            continue
        chunks = open_group.get(source)
        if chunks and run.started_at - _end(chunks[-1]) < BACKFILL_GAP_SECONDS:
            chunks.append(run)
            continue
        if chunks:
            lines.append(_backfill(source, chunks))
        open_group[source] = [run]
    lines.extend(_backfill(source, chunks) for source, chunks in open_group.items())
    return sorted(lines, key=lambda line: line.started_at, reverse=True)


def _end(run: RunInfo) -> float:
    return run.finished_at if run.finished_at is not None else run.started_at


def _single(source: str, run: RunInfo) -> HistoryLine:
    return HistoryLine(
        source=source,
        run=run,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        rows_processed=run.rows_processed,
        rows_rejected=run.rows_rejected,
        chunks_ok=int(run.status == "success"),
        chunks_failed=int(run.status == "error"),
        since=run.since,
        to=run.to,
    )


def _backfill(source: str, chunks: Sequence[RunInfo]) -> HistoryLine:
    failed = [c for c in chunks if c.status == "error"]
    unfinished = [c for c in chunks if c.status in {"queued", "running"}]
    status = "running" if unfinished else "error" if failed else "success"
    ends = [c.finished_at for c in chunks]
    sinces = [c.since for c in chunks if c.since is not None]
    tos = [c.to for c in chunks if c.to is not None]
    return HistoryLine(
        source=source,
        run=failed[-1] if failed else chunks[-1],
        started_at=chunks[0].started_at,
        finished_at=None if unfinished or None in ends else max(e for e in ends if e is not None),
        status=status,
        rows_processed=sum(c.rows_processed for c in chunks),
        rows_rejected=sum(c.rows_rejected for c in chunks),
        chunks=len(chunks),
        chunks_ok=sum(1 for c in chunks if c.status == "success"),
        chunks_failed=len(failed),
        since=min(sinces) if sinces else None,
        to=max(tos) if tos else None,
    )
