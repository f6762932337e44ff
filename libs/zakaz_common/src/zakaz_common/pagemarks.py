"""Marks of upstream pages a successful run read, so the next run can skip unchanged ones.

A mark is a page's number, the digest of its bytes, its paging and what the run counted in it.
A run over the same scope (for example the same date window) looks up the marks of the last
successful run: a page whose bytes hash to the same digest needs no decoding, and its staged rows
are copied forward from that run (`zakaz_common.load.carry_staged`). Marks are written only after
a publish succeeded, and only for pages read without rejects, so a skip never hides an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xxhash

from zakaz_common.clickhouse import Warehouse

_COLUMNS = (
    "source",
    "stream",
    "scope",
    "run_id",
    "page",
    "digest",
    "rows",
    "per_page",
    "total",
    "counts",
    "loaded_at",
)


def digest(body: bytes) -> str:
    """The digest a page is known by: XXH3-128 of its bytes, as hex.

    Not a cryptographic hash: it tells an unchanged page from a changed one at ~10 GB/s, so a
    re-run over an unchanged upstream costs little more than fetching it. The upstream is the
    organiser's own ticketing account; forging a collision would only make one run keep that
    page's previous rows.
    """
    return xxhash.xxh3_128_hexdigest(body)


@dataclass(frozen=True)
class PageMark:
    """One page as a successful run read it."""

    page: int
    digest: str
    rows: int
    per_page: int
    total: int
    #: What the run counted in this page (orders read, skipped by reason, rows staged, …).
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PageHistory:
    """The marks of the last successful run over one scope (empty when there is none)."""

    run_id: str = ""
    marks: Mapping[int, PageMark] = field(default_factory=dict)
    #: When that run recorded its marks (after its publish), as a Unix time.
    recorded_at: int = 0

    def unchanged(self, page: int, page_digest: str) -> PageMark | None:
        """The mark of `page` when its bytes are what that run read, else None."""
        mark = self.marks.get(page)
        return mark if mark is not None and mark.digest == page_digest else None


def last_marks(wh: Warehouse, source: str, stream: str, scope: str) -> PageHistory:
    """The page marks of the most recent run that recorded any for this source, stream, scope."""
    params = {"source": source, "stream": stream, "scope": scope}
    found = wh.rows(
        "SELECT argMax(run_id, loaded_at), toUnixTimestamp(max(loaded_at)) FROM meta_page_marks "
        "WHERE source = {source:String} AND stream = {stream:String} AND scope = {scope:String}",
        params,
    )
    run_id, recorded_at = found[0] if found else ("", 0)
    if not run_id:
        return PageHistory()
    rows = wh.rows(
        "SELECT page, digest, rows, per_page, total, counts FROM meta_page_marks "
        "WHERE source = {source:String} AND stream = {stream:String} AND scope = {scope:String} "
        "AND run_id = {run_id:String} ORDER BY page",
        {**params, "run_id": run_id},
    )
    marks = {
        int(page): PageMark(int(page), str(dig), int(n), int(per), int(total), _counts(counts))
        for page, dig, n, per, total, counts in rows
    }
    return PageHistory(str(run_id), marks, int(recorded_at))


def record_marks(
    wh: Warehouse, source: str, stream: str, scope: str, run_id: str, marks: Iterable[PageMark]
) -> int:
    """Store the marks of a run that published successfully; returns how many."""
    now = int(time.time())
    rows = [
        (
            source,
            stream,
            scope,
            run_id,
            m.page,
            m.digest,
            m.rows,
            m.per_page,
            m.total,
            json.dumps(dict(m.counts), sort_keys=True),
            now,
        )
        for m in marks
    ]
    if not rows:
        return 0
    return wh.insert("meta_page_marks", rows, list(_COLUMNS))


def _counts(text: Any) -> dict[str, int]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): int(v) for k, v in found.items() if isinstance(v, int)}
