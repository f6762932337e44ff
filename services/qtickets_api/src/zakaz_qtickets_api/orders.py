"""Pages of orders → staged sales rows, page by page, skipping pages unchanged since last run.

Rows are staged as pages arrive (memory stays flat however many orders the window holds); they
stay invisible until the load publishes them. A page whose bytes the last successful run over the
same window already read is not decoded: its staged rows are copied forward from that run, with
event names and cities taken from this run's events. A page with a rejected order gets no mark,
so it is read again (and its rejects recorded again) next time.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Final

from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import LoadError
from zakaz_common.facts import SALES
from zakaz_common.load import (
    HeldKeys,
    PublishResult,
    Reject,
    Scope,
    Stager,
    carry_staged,
    publish,
)
from zakaz_common.pagemarks import PageHistory, PageMark, digest, record_marks

from zakaz_qtickets_api import engine
from zakaz_qtickets_api.client import Page, read_page
from zakaz_qtickets_api.facts import SALES_UTM
from zakaz_qtickets_api.privacy import safe_order
from zakaz_qtickets_api.transform import (
    SOURCE,
    EventInfo,
    Sale,
    Skip,
    read_order,
    sales_row,
    utm_row,
)

log = logging.getLogger(__name__)

#: The name marks of this stream are kept under. Bump the version when what a page turns into
#: changes (the transform, the staged columns): marks written by older code are then not used.
STREAM: Final = "orders/v1"
#: Bytes of pages one read by the engine takes (about 4,000 pages of 100 orders): the engine's
#: memory grows with what one read takes, and a new read costs a few tens of milliseconds.
ENGINE_READ_BYTES: Final = 384 << 20
#: The staging column that names the page a row came from.
PAGE_COLUMN: Final = "page_digest"


@dataclass(frozen=True)
class Staging:
    """Where a (non-dry) run stages its rows."""

    wh: Warehouse
    run_id: str
    loaded_at: int


@dataclass
class OrderStream:
    """Turns pages of orders into staged sales and sales-by-UTM rows as they arrive."""

    since: date
    to: date
    events: Mapping[str, EventInfo]
    #: None in a dry run: rows are counted, nothing is staged.
    staging: Staging | None
    history: PageHistory = field(default_factory=PageHistory)
    counts: Counter[str] = field(default_factory=Counter)
    rejects: list[Reject] = field(default_factory=list)
    #: Marks of the pages this run read cleanly or carried (recorded once the load published).
    marks: list[PageMark] = field(default_factory=list)
    revenue: Decimal = Decimal("0.00")
    #: Set by `finish` when every page and every event is as the last run saw them and the
    #: facts were not written since: there is nothing to stage or publish.
    unchanged: bool = False
    _keys: set[tuple[date, str]] = field(default_factory=set)
    _carried: list[str] = field(default_factory=list)
    _decoded: int = 0
    _stagers: dict[str, Stager] = field(default_factory=dict)
    #: Fetches one page again, decoded (for pages the engine hands to the Python reader).
    refetch: Callable[[int], Page] | None = None
    #: Bytes of pages per read by the engine.
    read_bytes: int = ENGINE_READ_BYTES
    #: The pages sent to the engine and not yet settled (without their bytes).
    _raw: list[Page] = field(default_factory=list)
    _feed: engine.PageFeed | None = None
    _fed_bytes: int = 0
    #: Where in `_raw` the pages of the engine's current read start.
    _read_from: int = 0
    #: Pages whose read by the engine failed.
    _failed: set[str] = field(default_factory=set)
    #: What the engine made of the pages it read.
    _engine_reads: list[engine.PageRead] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Page 0 stands for what the rows take from the events: a rename changes its digest.
        attributes = sorted((e.event_id, e.name, e.city) for e in self.events.values())
        context = json.dumps(attributes, ensure_ascii=False).encode()
        self._context = PageMark(0, digest(context), 0, 0, 0)
        # Staged rows take event names and cities from this run's events.
        names = {e.event_id: e.name for e in self.events.values()}
        cities = {e.event_id: e.city for e in self.events.values()}
        self._lookups: dict[str, tuple[str, Mapping[str, str]]] = {
            "event_name": ("event_id", names),
            "city": ("event_id", cities),
        }
        if self.staging is not None:
            for spec in (SALES, SALES_UTM):
                self._stagers[spec.fact] = Stager(
                    self.staging.wh,
                    spec,
                    self.staging.run_id,
                    self.staging.loaded_at,
                    extra=(PAGE_COLUMN,),
                    # A row the warehouse still refuses is rejected alone, not the run.
                    on_reject=self.rejects.append,
                )

    def feed(self, page: Page) -> None:
        """Take one page: carry it when unchanged, else read and stage its orders."""
        self.counts["order_pages"] += 1
        if page.records is None and page.known is not None:
            self._carried.append(page.digest)
            self.marks.append(page.known)
            self.counts.update({k: v for k, v in page.known.counts.items() if k != "order_pages"})
            self.revenue += Decimal(page.known.counts.get("revenue_kopecks", 0)) / 100
            return
        body = page.body
        if page.records is None and body is not None:
            if self.staging is None:
                # Nothing may be staged (a dry run): the Python reader takes the page.
                page = read_page("orders", page.number, body, safe_order, PageHistory())
            else:
                if self._feed is None:
                    self._feed = engine.PageFeed(
                        self.staging.wh,
                        self.staging.run_id,
                        self.staging.loaded_at,
                        self.since,
                        self.to,
                        self._lookups,
                    )
                self._feed.write(page.digest, body)
                self._raw.append(replace(page, body=None))
                self._fed_bytes += len(body)
                if self._fed_bytes >= self.read_bytes:
                    self._end_read()
                return
        # Python stages through the warehouse, which is busy with the feed until it ends.
        self._end_read()
        self._read(page)

    def _read(self, page: Page) -> None:
        self._decoded += 1
        counts: Counter[str] = Counter()
        rejected = len(self.rejects)
        for raw in page.records or ():
            counts["orders"] += 1
            found = read_order(raw)
            if isinstance(found, Reject):
                self.rejects.append(found)
                counts["orders_rejected"] += 1
            elif isinstance(found, Skip):
                counts[f"orders_{found.reason}"] += 1
            elif not self.since <= found.sale_date <= self.to:
                # The server's filter is undocumented for orders: re-checked here.
                counts["orders_outside_window"] += 1
            else:
                self._stage(found, page.digest, counts)
        self.counts.update(counts)
        if len(self.rejects) == rejected:
            self.marks.append(
                PageMark(page.number, page.digest, page.rows, page.per_page, page.total, counts)
            )

    def _end_read(self) -> None:
        """Let the engine finish reading the pages sent (what it made of them is settled by
        `_settle`, once for the whole stream)."""
        feed, self._feed, self._fed_bytes = self._feed, None, 0
        sent, self._read_from = self._raw[self._read_from :], len(self._raw)
        if feed is None:
            return
        try:
            feed.close()
        except LoadError as exc:
            # The engine's message may quote the pages (buyers included): only its kind is
            # logged. Whatever it staged of these pages is taken back; Python reads them all.
            log.warning(
                "the engine could not read %d pages of orders (%s); the Python reader takes them",
                len(sent),
                type(exc.__cause__ or exc).__name__,
            )
            self._failed.update(p.digest for p in sent)

    def _settle(self) -> None:
        """Take what the engine made of the pages it read; those it could not go to `_read`."""
        self._end_read()
        batch, self._raw, self._read_from = self._raw, [], 0
        failed, self._failed = self._failed, set()
        if not batch or self.staging is None:
            return
        wh, run_id = self.staging.wh, self.staging.run_id
        found = engine.read_pages(wh, run_id)
        taken: dict[str, engine.PageRead] = {}
        for page in batch:
            read = found.get(page.digest)
            if (
                read is not None
                and page.digest not in failed
                and not read.unread
                and (read.page, read.per_page, read.total)
                == (page.number, page.per_page, page.total)
            ):
                taken[page.digest] = read
        # The rest are outside the strict shapes (or unparsable): the Python reader decides.
        engine.discard(wh, run_id, [p.digest for p in batch if p.digest not in taken])
        for page in batch:
            read = taken.get(page.digest)
            if read is None:
                self._read(self._fetch_again(page))
                continue
            self._decoded += 1
            self._engine_reads.append(read)
            self.counts.update(read.counts)
            self.revenue += read.revenue
            self.marks.append(
                PageMark(
                    page.number, page.digest, read.orders, page.per_page, page.total, read.counts
                )
            )

    def _fetch_again(self, page: Page) -> Page:
        # Python kept nothing of the page: it is fetched again (rarely: only pages with an order
        # outside the engine's strict shapes). Should it have changed since, the new bytes are
        # what is read and remembered.
        if self.refetch is None:
            raise LoadError(
                f"page {page.number} of orders needs the Python reader, and this stream "
                "cannot fetch it again"
            )
        return self.refetch(page.number)

    def close(self) -> None:
        """Stop the engine's read, if one is under way (the run is failing; idempotent)."""
        feed, self._feed = self._feed, None
        self._raw, self._read_from = [], 0
        if feed is not None:
            feed.abort()

    def finish(self) -> None:
        """Write what is still queued and copy forward the rows of unchanged pages."""
        self._settle()
        for stager in self._stagers.values():
            stager.flush()
        if self.staging is None:
            return
        if not engine.in_id_order(self._engine_reads):
            engine.drop_repeats(self.staging.wh, self.staging.run_id)
        if not self._carried:
            return
        if self._decoded == 0 and self._untouched_since_last_run(self.staging.wh):
            self.unchanged = True
            return
        lookups = self._lookups
        for spec in (SALES, SALES_UTM):
            carry_staged(
                self.staging.wh,
                spec,
                from_run=self.history.run_id,
                to_run=self.staging.run_id,
                loaded_at=self.staging.loaded_at,
                tag=PAGE_COLUMN,
                values=self._carried,
                # Rows the Python reader staged are numbered from 0; carried ones follow them.
                seq_offset=self._stagers[spec.fact].staged,
                lookups={k: v for k, v in lookups.items() if k in spec.columns},
            )

    def publish(self, scope: Scope, held: HeldKeys | None = None) -> dict[str, PublishResult]:
        """Publish the staged sales and sales by UTM (nothing when `unchanged`).

        `held` are the keys of the run's rejected rows, left as they are (see `load.publish`).
        """
        if self.staging is None:
            raise RuntimeError("a dry run publishes nothing")
        if self.unchanged:
            # Every page and event as the last run read them: its publish stands.
            return {spec.fact: PublishResult(0, 0) for spec in (SALES, SALES_UTM)}
        return {
            spec.fact: publish(
                self.staging.wh,
                spec,
                self.staging.run_id,
                scope,
                loaded_at=self.staging.loaded_at,
                held=held.for_fact(spec.fact) if held is not None else (),
            )
            for spec in (SALES, SALES_UTM)
        }

    def record_marks(self, scope_key: str) -> int:
        """After a successful publish: remember the pages (and events, as page 0) read cleanly."""
        if self.staging is None or self.unchanged or not self.marks:
            return 0
        return record_marks(
            self.staging.wh,
            SOURCE,
            STREAM,
            scope_key,
            self.staging.run_id,
            [self._context, *self.marks],
        )

    def _untouched_since_last_run(self, wh: Warehouse) -> bool:
        if self.history.unchanged(0, self._context.digest) is None:
            return False
        # A run of another window (a backfill) may have written these days since.
        for spec in (SALES, SALES_UTM):
            written = wh.scalar(
                f"SELECT toUnixTimestamp(max(loaded_at)) FROM {spec.fact} "
                "WHERE source = {source:String} AND sale_date BETWEEN {since:Date} AND {to:Date}",
                {"source": SOURCE, "since": self.since, "to": self.to},
            )
            if int(written or 0) > self.history.recorded_at:
                return False
        return True

    @property
    def engine_pages(self) -> int:
        """Pages the engine read (the others were carried or read by Python)."""
        return len(self._engine_reads)

    @property
    def carried_pages(self) -> int:
        """Pages taken over from the last run without decoding them."""
        return len(self._carried)

    def sales_keys(self) -> int:
        """Distinct (sale_date, event_id) keys among this run's sales."""
        if self.staging is None or not (self._carried or self._engine_reads):
            return len(self._keys)
        if self.unchanged:
            sql = (
                f"SELECT uniqExact(sale_date, event_id) FROM {SALES.fact} FINAL "
                "WHERE source = {source:String} AND sale_date BETWEEN {since:Date} AND {to:Date} "
                "AND _deleted = 0"
            )
            params = {"source": SOURCE, "since": self.since, "to": self.to}
        else:
            sql = (
                f"SELECT uniqExact(sale_date, event_id) FROM {SALES.staging} "
                "WHERE run_id = {run_id:String}"
            )
            params = {"run_id": self.staging.run_id}
        return int(self.staging.wh.scalar(sql, params) or 0)

    def _stage(self, sale: Sale, page_digest: str, counts: Counter[str]) -> None:
        counts["sales_rows"] += 1
        counts["tickets_sold"] += sale.tickets_sold
        counts["revenue_kopecks"] += int(sale.revenue * 100)
        self.revenue += sale.revenue
        self._keys.add((sale.sale_date, sale.event_id))
        if not self._stagers:
            return
        row = sales_row(sale, self.events.get(sale.event_id))
        row[PAGE_COLUMN] = page_digest
        self._stagers[SALES.fact].add(row)
        utm = utm_row(sale)
        utm[PAGE_COLUMN] = page_digest
        self._stagers[SALES_UTM.fact].add(utm)
