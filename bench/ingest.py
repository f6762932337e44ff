"""Ingest: 1,000,000 QTickets-shaped orders through the qtickets_api source's own page reader,
transform and loader.

The orders are generated (seeded: 1–3 baskets each, buyers' PII, UTMs, unpaid, cancelled and
refunded ones) as the API sends them, JSON pages of 100 orders with `paging`, into a file first
(not timed), so that the engine cannot do its work while the generator makes the next page. The
pipeline reads that file a page at a time, as fast as a network could send it, and does what the
source does with each page it receives: `read_page` (digest, paging) → `OrderStream` (the
engine reads the page, or Python decodes it: PII whitelist, `read_order`; sales and
sales-by-UTM rows staged as they come) → publish both facts → record the page marks. Nothing
holds the whole payload. The baseline inserts the same flattened rows columnar, one
`client.insert` per 100,000 rows.
"""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from zakaz_common.clickhouse import Warehouse
from zakaz_common.load import Scope
from zakaz_common.pagemarks import PageHistory, last_marks
from zakaz_qtickets_api.client import PER_PAGE, read_page
from zakaz_qtickets_api.orders import STREAM, OrderStream, Staging
from zakaz_qtickets_api.privacy import safe_order
from zakaz_qtickets_api.transform import SOURCE, EventInfo

#: Rows per baseline insert, as the issue fixes it.
BASELINE_BATCH = 100_000
EVENTS = 200
_FIRST_DAY = date(2026, 9, 1)
_DAYS = 60
_CITIES = ("москва", "санкт-петербург", "казань", "екатеринбург", "нижний новгород")


@dataclass(frozen=True)
class IngestResult:
    """One pipeline pass."""

    orders: int
    #: Flattened rows staged: sales rows plus sales-by-UTM rows.
    rows: int
    seconds: float
    fact_rows_written: int
    pages: int
    pages_unchanged: int

    @property
    def rows_per_second(self) -> float:
        """Flattened rows per second through decode, transform and load (generation excluded)."""
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class PageFile:
    """Generated pages, one per line, and each page's length in bytes."""

    path: Path
    lengths: list[int]

    def bodies(self) -> Iterator[bytes]:
        """The pages in order, as the API would send them."""
        with self.path.open("rb") as source:
            for length in self.lengths:
                yield source.read(length)
                source.read(1)

    def page(self, number: int) -> bytes:
        """Page `number` (from 1) once more."""
        with self.path.open("rb") as source:
            source.seek(sum(n + 1 for n in self.lengths[: number - 1]))
            return source.read(self.lengths[number - 1])


def write_pages(count: int, path: Path) -> PageFile:
    """Generate `count` orders into `path` as pages, one per line."""
    lengths = []
    with path.open("wb") as out:
        for body in pages(count):
            out.write(body + b"\n")
            lengths.append(len(body))
    return PageFile(path, lengths)


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def events() -> dict[str, EventInfo]:
    """The events the orders belong to, as the source reads them before the orders."""
    return {
        str(24_000 + i): EventInfo(
            event_id=str(24_000 + i),
            name=f"Стендап: большой сольный концерт №{i}",
            event_date=_FIRST_DAY + timedelta(days=_DAYS + i % 30),
            city=_CITIES[i % len(_CITIES)],
            show_ids=(str(150_000 + i),),
        )
        for i in range(EVENTS)
    }


def pages(count: int, seed: int = 7) -> Iterator[bytes]:
    """`count` orders as QTickets sends them: JSON pages of PER_PAGE orders, in id order."""
    rnd = random.Random(seed)
    made = 0
    number = 0
    while made < count:
        number += 1
        chunk = []
        for _ in range(min(PER_PAGE, count - made)):
            made += 1
            day = _FIRST_DAY + timedelta(days=rnd.randrange(_DAYS))
            paid = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rnd.randrange(86_400)
            )
            baskets = [
                {
                    "id": made * 10 + b,
                    "show_id": 150_000 + made % EVENTS,
                    "price": rnd.choice((900, 1500, 2500)),
                    "quantity": 1,
                    "client_email": f"buyer{made}@example.ru",
                    "client_phone": "+79990001122",
                    "client_name": "Анна",
                    "client_surname": "Смирнова",
                    "deleted_at": None,
                    "refunded_at": "2026-10-01T10:00:00+03:00" if rnd.random() < 0.03 else None,
                }
                for b in range(rnd.randint(1, 3))
            ]
            chunk.append(
                {
                    "id": made,
                    "uniqid": f"Q{made}",
                    "payed": rnd.random() < 0.9,
                    "payed_at": paid.isoformat(),
                    "created_at": paid.isoformat(),
                    "updated_at": paid.isoformat(),
                    "deleted_at": "2026-10-02T10:00:00+03:00" if rnd.random() < 0.05 else None,
                    "event_id": 24_000 + made % EVENTS,
                    "client": {
                        "email": f"buyer{made}@example.ru",
                        "details": {"name": "Анна", "phone": "+79990001122"},
                    },
                    "payment_card_number": "220220******6407",
                    "utm": {"utm_source": "vk", "utm_medium": "cpc", "utm_content": "msk_02_12"}
                    if made % 2
                    else [],
                    "custom": "",
                    "fields": [],
                    "baskets": baskets,
                    "price": sum(b["price"] for b in baskets),
                }
            )
        paging = {"perPage": PER_PAGE, "currentPage": number, "total": count}
        yield json.dumps({"data": chunk, "paging": paging}, ensure_ascii=False).encode()


def pipeline(
    wh: Warehouse, source: PageFile, run_id: str, *, engine: bool = True, remember: bool = True
) -> IngestResult:
    """Read, transform and load the pages of `source` as the qtickets_api source does; publish.

    `engine=False` reads every page with the Python reader (what a dry run does);
    `remember=False` ignores the marks of earlier runs (every page is read).
    """
    since, to = _FIRST_DAY, _FIRST_DAY + timedelta(days=_DAYS - 1)
    scope_key = f"{since}..{to}"
    started = time.perf_counter()
    history = last_marks(wh, SOURCE, STREAM, scope_key) if remember else PageHistory()
    stream = OrderStream(
        since,
        to,
        events(),
        Staging(wh, run_id, int(time.time())),
        history,
        refetch=lambda n: read_page("orders", n, source.page(n), safe_order, PageHistory()),
    )
    number = 0
    try:
        for body in source.bodies():
            number += 1
            stream.feed(read_page("orders", number, body, safe_order, history, raw=engine))
        stream.finish()
    finally:
        stream.close()
    scope = Scope(equals={"source": [SOURCE]}, since=since, to=to)
    written = sum(r.written for r in stream.publish(scope).values())
    stream.record_marks(scope_key)
    seconds = time.perf_counter() - started
    rows = 2 * stream.counts["sales_rows"]
    return IngestResult(
        stream.counts["orders"], rows, seconds, written, number, stream.carried_pages
    )


def baseline(wh: Warehouse, count: int) -> float:
    """Seconds to insert `count` flattened rows (half sales, half sales-by-UTM) columnar,
    BASELINE_BATCH per insert."""
    wh.command("DROP TABLE IF EXISTS bench_baseline_sales")
    wh.command("DROP TABLE IF EXISTS bench_baseline_utm")
    wh.command(
        "CREATE TABLE bench_baseline_sales (sale_date Date, event_id String, "
        "source LowCardinality(String), event_name String, city String, tickets_sold Int64, "
        "revenue Decimal(18, 2)) ENGINE = MergeTree ORDER BY (source, sale_date, event_id)"
    )
    wh.command(
        "CREATE TABLE bench_baseline_utm (sale_date Date, event_id String, "
        "source LowCardinality(String), utm_source String, utm_medium String, "
        "utm_campaign String, utm_content String, utm_term String, tickets_sold Int64, "
        "revenue Decimal(18, 2)) ENGINE = MergeTree ORDER BY (source, sale_date, event_id)"
    )
    rnd = random.Random(11)
    spent = 0.0
    half = count // 2
    for table in ("bench_baseline_sales", "bench_baseline_utm"):
        for start in range(0, half, BASELINE_BATCH):
            n = min(BASELINE_BATCH, half - start)
            columns: dict[str, list[Any]] = {
                "sale_date": [_FIRST_DAY + timedelta(days=rnd.randrange(_DAYS)) for _ in range(n)],
                "event_id": [str(24_000 + i % EVENTS) for i in range(n)],
                "source": [SOURCE] * n,
                "tickets_sold": [rnd.randint(1, 3) for _ in range(n)],
                "revenue": [Decimal(rnd.choice((900, 1500, 2500))) for _ in range(n)],
            }
            if table == "bench_baseline_sales":
                columns["event_name"] = [f"Стендап №{i % EVENTS}" for i in range(n)]
                columns["city"] = [_CITIES[i % len(_CITIES)] for i in range(n)]
            else:
                columns["utm_source"] = ["vk" if i % 2 else "" for i in range(n)]
                columns["utm_medium"] = ["cpc" if i % 2 else "" for i in range(n)]
                columns["utm_campaign"] = [""] * n
                columns["utm_content"] = ["msk_02_12" if i % 2 else "" for i in range(n)]
                columns["utm_term"] = [""] * n
            t0 = time.perf_counter()
            wh.insert_columns(table, columns)
            spent += time.perf_counter() - t0
    return spent


#: The fields of a page that ClickHouse's own JSON reader parses for the floor measurement.
_PAGE_STRUCTURE = (
    "data Array(Tuple(id UInt64, payed Bool, payed_at String, deleted_at Nullable(String), "
    "event_id UInt64, utm String, baskets Array(Tuple(id UInt64, price Decimal(18, 2), "
    "quantity Int64, deleted_at Nullable(String), refunded_at Nullable(String))))), "
    "paging Tuple(perPage UInt32, currentPage UInt32, total UInt64)"
)


def engine_parse_seconds(wh: Warehouse, source: PageFile, count: int) -> float:
    """Seconds ClickHouse's own JSON reader takes to parse the same pages, with no transform.

    A floor for any pipeline that starts from the API's JSON: the pages are read with
    `file(…, JSONEachRow)` from the generated file, each page one row.
    """
    started = time.perf_counter()
    read = wh.scalar(
        f"SELECT sum(length(data)) FROM file('{source.path}', 'JSONEachRow', '{_PAGE_STRUCTURE}')"
    )
    spent = time.perf_counter() - started
    if int(read) != count:
        raise RuntimeError(f"the engine read {read} orders of {count}")
    return spent
