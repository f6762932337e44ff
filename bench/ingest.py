"""Ingest: 1,000,000 QTickets-shaped orders through our own PII filter, transform and loader.

The orders are generated (seeded: 1–3 baskets each, buyers' PII, UTMs, unpaid, cancelled and
refunded ones) in chunks, so nothing holds the whole payload. The pipeline is what the
`qtickets_api` source does per order — `safe_order` → `read_order` → `sales_row` — then the
shared stage → publish. The baseline inserts the same number of already-flattened sale rows
columnar, one `client.insert` per 100,000 rows. Generation time is measured apart and left out
of both.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import SALES
from zakaz_common.load import Scope, Stager, publish
from zakaz_qtickets_api.privacy import safe_order
from zakaz_qtickets_api.transform import Sale, read_order, sales_row

#: Orders per generated chunk: small enough to keep memory flat.
CHUNK = 10_000
#: Rows per baseline insert, as the issue fixes it.
BASELINE_BATCH = 100_000
EVENTS = 200
_FIRST_DAY = date(2026, 9, 1)


@dataclass(frozen=True)
class IngestResult:
    """One pipeline pass."""

    orders: int
    sales: int
    seconds: float
    generate_seconds: float
    fact_rows_written: int

    @property
    def rows_per_second(self) -> float:
        """Orders per second through transform and load (generation excluded)."""
        return self.orders / self.seconds if self.seconds else 0.0


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


def orders(count: int, seed: int = 7) -> Iterator[list[dict[str, Any]]]:
    """`count` orders as QTickets sends them, in chunks of CHUNK."""
    rnd = random.Random(seed)
    made = 0
    while made < count:
        chunk = []
        for _ in range(min(CHUNK, count - made)):
            made += 1
            day = _FIRST_DAY + timedelta(days=rnd.randrange(60))
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
        yield chunk


def pipeline(wh: Warehouse, count: int, run_id: str) -> IngestResult:
    """Transform and load `count` orders as the qtickets_api source does; publish once."""
    stager = Stager(wh, SALES, run_id, int(time.time()))
    generate = 0.0
    sales = 0
    started = time.perf_counter()
    source = orders(count)
    while True:
        g0 = time.perf_counter()
        chunk = next(source, None)
        generate += time.perf_counter() - g0
        if chunk is None:
            break
        for raw in chunk:
            sale = read_order(safe_order(raw))
            if isinstance(sale, Sale):
                stager.add(sales_row(sale, None))
                sales += 1
    stager.flush()
    result = publish(wh, SALES, run_id, Scope(equals={"source": ["qtickets_api"]}))
    seconds = time.perf_counter() - started - generate
    return IngestResult(count, sales, seconds, generate, result.written)


def baseline(wh: Warehouse, count: int) -> float:
    """Seconds to insert `count` flattened sale rows columnar, BASELINE_BATCH per insert."""
    wh.command("DROP TABLE IF EXISTS bench_baseline_sales")
    wh.command(
        "CREATE TABLE bench_baseline_sales (sale_date Date, event_id String, source LowCardinality(String), "
        "event_name String, city String, tickets_sold Int64, revenue Decimal(18, 2)) "
        "ENGINE = MergeTree ORDER BY (source, sale_date, event_id)"
    )
    rnd = random.Random(11)
    spent = 0.0
    for start in range(0, count, BASELINE_BATCH):
        n = min(BASELINE_BATCH, count - start)
        columns = {
            "sale_date": [_FIRST_DAY + timedelta(days=rnd.randrange(60)) for _ in range(n)],
            "event_id": [str(24_000 + i % EVENTS) for i in range(n)],
            "source": ["qtickets_api"] * n,
            "event_name": [""] * n,
            "city": [""] * n,
            "tickets_sold": [rnd.randint(1, 3) for _ in range(n)],
            "revenue": [Decimal(rnd.choice((900, 1500, 2500))) for _ in range(n)],
        }
        t0 = time.perf_counter()
        wh.insert_columns("bench_baseline_sales", columns)
        spent += time.perf_counter() - t0
    return spent
