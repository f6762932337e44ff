"""ClickHouse reads pages of orders itself: the fast path for CONTRACT §5 on big windows.

The pages go to the engine as they arrive (`PageFeed`, over `Warehouse.feed`: one query reads a
stream's pages while they are fetched, Python keeps none of them); the structure below
names the only fields it parses, so the buyer's fields are skipped unread and never exist as
values. One `INSERT … SELECT` gives every order a status (`sale`, `unpaid`, `cancelled`,
`refunded`, `outside_window`) and, for sales, its date, event, tickets, revenue and UTM tags.
It writes into `stg_qtickets_orders_in`, which keeps nothing: materialized views stage the sales
into `stg_qtickets_sales` and `stg_qtickets_sales_utm` and count each page's orders by status
into `stg_qtickets_order_pages`, all in the same pass (migration 0011).

The SQL reads a strict subset of what the Python reader (`transform.read_order`) accepts: ISO
stamps with an offset, ids and amounts as plain digits, UTM tags of plain characters. Any order
outside it is `unread`, and a page that holds one, or that the engine could not parse at all, is
fetched again and read by the Python reader (after `discard` took back what the engine staged
of it), which gives the exact result or the reject and its reason. So both paths agree on every
page by construction; `test_engine` checks it on generated orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import SALES
from zakaz_common.load import lookup

from zakaz_qtickets_api.facts import SALES_UTM

#: The fields of a page the engine parses (everything else is skipped unparsed).
_BASKET: Final = (
    "Tuple(deleted_at Nullable(String), refunded_at Nullable(String), "
    "price Nullable(String), quantity Nullable(String))"
)
_ORDER: Final = (
    "Tuple(id Nullable(String), payed Nullable(String), payed_at Nullable(String), "
    "deleted_at Nullable(String), event_id Nullable(String), "
    "utm Variant(String, Map(String, String), Array(String)), "
    f"baskets Array({_BASKET}))"
)
STRUCTURE: Final = (
    f"digest String, page Tuple(data Array({_ORDER}), paging Tuple(perPage Nullable(String), "
    "currentPage Nullable(String), total Nullable(String)))"
)

#: A timestamp field as the Python reader sees it: 0 absent, 1 present, 2 not in the strict
#: shapes (leading or trailing blanks, other characters).
_STATE: Final = (
    "multiIf({x} IS NULL OR {x} IN ('', '0000-00-00', '0000-00-00 00:00:00'), 0, "
    "match({x}, '^[0-9A-Za-z:+.\\\\-]([0-9A-Za-z:+. \\\\-]*[0-9A-Za-z:+.\\\\-])?$'), 1, 2)"
)
_STAMP: Final = (
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    "[+-]([01][0-9]|2[0-3]):[0-5][0-9]$"
)
#: A UTM tag the SQL may take as it is: words of plain characters joined by single spaces
#: (what Python's whitespace folding leaves unchanged), no `@` (e-mails are blanked), at most
#: 200 characters, not a JSON true/false or a non-integer number (Python prints those
#: differently). The five tags are checked at once, joined by \x01 (which no word holds, so a
#: tag that holds one fails the count of five).
_WORD: Final = "[0-9A-Za-zА-Яа-яЁё_.,:;/%+=!?()«»#&\\\\-]+"
_TAG: Final = "(" + _WORD + "( " + _WORD + ")*)?"
_TAGS_OK: Final = "^" + _TAG + "(\\\\x01" + _TAG + "){4}$"
_TAG_BAD: Final = "(^|\\\\x01)(true|false|[-+0-9.eE]*[-+.eE][-+0-9.eE]*|[0-9]{16,})(\\\\x01|$)"
_TAGS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def _state(x: str) -> str:
    return _STATE.format(x=x)


def _read_sql(event_name: str, city: str) -> str:
    # A Variant's Map element is empty where the value is not an object: its tags are then ''.
    tag_exprs = ",\n".join(f"o.utm.`Map(String, String)`['{t}'] AS {t}" for t in _TAGS)
    joined = ", '\\x01', ".join(_TAGS)
    tags_ok = (
        " AND ".join(f"lengthUTF8({t}) <= 200" for t in _TAGS)
        + f" AND match(concat({joined}), '{_TAGS_OK}')"
        + f" AND NOT match(concat({joined}), '{_TAG_BAD}')"
    )
    return f"""
INSERT INTO stg_qtickets_orders_in (run_id, _seq, loaded_at, page_digest, page, per_page, total,
    order_id, order_number, status, sale_date, event_id, event_name, city, tickets_sold, revenue,
    {", ".join(_TAGS)})
SELECT
    {{run_id:String}}, {SEQ_BASE} + bitShiftLeft(toUInt64(page_no), 16) + position,
    {{loaded_at:UInt32}}, digest, page_no, per_page, total, order_id, toUInt64OrZero(order_id),
    multiIf(
        payed_flag = 2, 'unread',
        payed_flag = 0, 'unpaid',
        deleted_state = 2, 'unread',
        deleted_state = 1, 'cancelled',
        NOT stamp_ok OR local_time IS NULL, 'unread',
        NOT match(event_raw, '^[0-9]{{1,9}}$'), 'unread',
        baskets_unread, 'unread',
        length(live) = 0, 'refunded',
        NOT (sale_day BETWEEN {{since:Date}} AND {{to:Date}}), 'outside_window',
        NOT utm_ok, 'unread',
        'sale'
    ) AS status,
    if(status = 'sale', sale_day, toDate(0)),
    if(status = 'sale', toString(toUInt32OrZero(event_raw)), '') AS event_id,
    if(status = 'sale', {event_name}, ''),
    if(status = 'sale', {city}, ''),
    if(status = 'sale', arraySum(b -> toInt64OrZero(ifNull(b.quantity, '')), live), 0),
    if(status = 'sale',
       CAST(arraySum(b -> toDecimal64OrZero(ifNull(b.price, ''), 2), live) AS Decimal(18, 2)),
       toDecimal64(0, 2)),
    {", ".join(_TAGS)}
FROM
(
    SELECT
        digest,
        position,
        toUInt32OrZero(ifNull(page.paging.currentPage, '')) AS page_no,
        toUInt32OrZero(ifNull(page.paging.perPage, '')) AS per_page,
        toUInt64OrZero(ifNull(page.paging.total, '')) AS total,
        ifNull(o.id, '') AS order_id,
        multiIf(o.payed IS NULL, 0, lower(o.payed) IN ('1', 'true'), 1,
                lower(o.payed) IN ('0', 'false', ''), 0, 2) AS payed_flag,
        {_state("o.deleted_at")} AS deleted_state,
        ifNull(o.payed_at, '') AS stamp,
        match(stamp, '{_STAMP}') AS stamp_ok,
        concat(substring(stamp, 1, 10), ' ', substring(stamp, 12, 8)) AS wall,
        toDateTimeOrNull(wall, 'UTC') AS parsed_wall,
        if(stamp_ok AND parsed_wall IS NOT NULL AND parsed_wall >= toDateTime('1971-01-01', 'UTC')
           AND formatDateTime(parsed_wall, '%Y-%m-%d %H:%i:%S', 'UTC') = wall,
           parsed_wall, NULL) AS local_time,
        (if(substring(stamp, 20, 1) = '-', -1, 1)
         * (toInt32OrZero(substring(stamp, 21, 2)) * 3600
            + toInt32OrZero(substring(stamp, 24, 2)) * 60)) AS offset_seconds,
        toDate(toDateTime(toUnixTimestamp(ifNull(local_time, toDateTime(0, 'UTC')))
                          - offset_seconds, 'UTC'), 'Europe/Moscow') AS sale_day,
        ifNull(o.event_id, '') AS event_raw,
        -- Each basket's two stamp states, read once: 3 * deleted_at + refunded_at (0: live).
        arrayMap(b -> {_state("b.deleted_at")} * 3 + {_state("b.refunded_at")}, o.baskets)
            AS basket_states,
        arrayExists(s -> s % 3 = 2 OR s >= 6, basket_states)
        OR arrayExists((b, s) -> s = 0
                                 AND (NOT match(ifNull(b.quantity, ''), '^[0-9]{{1,9}}$')
                                      OR NOT match(ifNull(b.price, ''),
                                                   '^[0-9]{{1,9}}(\\\\.[0-9]{{1,2}})?$')),
                       o.baskets, basket_states)
            AS baskets_unread,
        arrayFilter((b, s) -> s = 0, o.baskets, basket_states) AS live,
        {tag_exprs},
        (variantType(o.utm) IN ('None', 'Map(String, String)')
         OR (variantType(o.utm) = 'Array(String)' AND empty(o.utm.`Array(String)`))
         OR (variantType(o.utm) = 'String' AND o.utm.String = '')) AND {tags_ok} AS utm_ok
    FROM {{rows}}
    ARRAY JOIN page.data AS o, arrayEnumerate(page.data) AS position
)
"""


#: A page that does not parse is skipped by the engine (and so read by Python), not fatal.
READ_SETTINGS: Final = {
    "input_format_allow_errors_ratio": 1,
    "input_format_allow_errors_num": 1_000_000_000,
    "input_format_skip_unknown_fields": 1,
    "input_format_null_as_default": 1,
    # Every branch is total (the *OrZero/*OrNull functions never throw), and evaluating the
    # status branches lazily costs three times the parsing itself.
    "short_circuit_function_evaluation": "'disable'",
    # The three materialized views take each block at once rather than one after the other.
    "parallel_view_processing": 1,
    # Blocks of about 100k orders: larger ones hold more memory for no measurable gain.
    "min_insert_block_size_rows": 100_000,
    "min_insert_block_size_bytes": 64 << 20,
}
#: The engine's staged rows are numbered from here (page << 16 | position on the page), apart
#: from the rows the Python reader stages (numbered from 0).
SEQ_BASE: Final = 1 << 48


@dataclass(frozen=True)
class PageRead:
    """What the engine made of one page."""

    digest: str
    page: int
    per_page: int
    total: int
    orders: int
    unread: int
    counts: Mapping[str, int]
    revenue: Decimal
    #: The smallest and largest numeric order id on the page (0: an id is not a number).
    first_number: int
    last_number: int


class PageFeed:
    """Pages of orders on their way to the engine, which reads and stages them as they come;
    `close` ends the read (`LoadError` when the engine failed)."""

    def __init__(
        self,
        wh: Warehouse,
        run_id: str,
        loaded_at: int,
        since: date,
        to: date,
        lookups: Mapping[str, tuple[str, Mapping[str, str]]],
    ) -> None:
        params: dict[str, Any] = {
            "run_id": run_id,
            "loaded_at": loaded_at,
            "since": since,
            "to": to,
        }
        name, city = (lookup(*lookups[c], params) for c in ("event_name", "city"))
        self._feed = wh.feed(_read_sql(name, city), STRUCTURE, "JSONEachRow", params, READ_SETTINGS)

    def write(self, page_digest: str, body: bytes) -> None:
        """Send one page as received (the engine parses it; Python keeps nothing of it)."""
        # One line per page (a raw newline in JSON is only ever whitespace between tokens).
        self._feed.write(
            b'{"digest":"' + page_digest.encode() + b'","page":',
            body.replace(b"\n", b" ") if b"\n" in body else body,
            b"}\n",
        )

    def close(self) -> None:
        """Wait for the engine to have read and staged every page sent."""
        self._feed.close()

    def abort(self) -> None:
        """Stop without waiting to hear how the read went (the run is failing)."""
        self._feed.abort()


def read_pages(wh: Warehouse, run_id: str) -> dict[str, PageRead]:
    """What the engine made of the pages it read in this run, by page digest.

    A page missing from the answer could not be parsed (or holds no order); a page with
    `unread` orders holds an order outside the strict shapes. Both are for the Python reader,
    once `discard` has taken back what the engine staged of them.
    """
    rows = wh.rows(
        """
        SELECT page_digest, any(page), any(per_page), any(total), sum(orders), sum(unread),
               sum(unpaid), sum(cancelled), sum(refunded), sum(outside_window), sum(sales),
               sum(tickets_sold), sum(revenue), min(first_number), max(last_number)
        FROM stg_qtickets_order_pages
        WHERE run_id = {run_id:String}
        GROUP BY page_digest
        """,
        {"run_id": run_id},
    )
    found = {}
    for (
        dig,
        page,
        per_page,
        total,
        orders,
        unread,
        unpaid,
        cancelled,
        refunded,
        outside,
        sales,
        tickets,
        revenue,
        first,
        last,
    ) in rows:
        counts = {
            "orders": int(orders),
            "orders_unpaid": int(unpaid),
            "orders_cancelled": int(cancelled),
            "orders_refunded": int(refunded),
            "orders_outside_window": int(outside),
            "sales_rows": int(sales),
            "tickets_sold": int(tickets),
            "revenue_kopecks": int(Decimal(revenue) * 100),
        }
        found[str(dig)] = PageRead(
            str(dig),
            int(page),
            int(per_page),
            int(total),
            int(orders),
            int(unread),
            {k: v for k, v in counts.items() if v},
            Decimal(revenue),
            int(first),
            int(last),
        )
    return found


def discard(wh: Warehouse, run_id: str, digests: Sequence[str]) -> None:
    """Take back what the engine staged of these pages in this run (Python reads them). Their
    page counts stay: they are read once, by `read_pages`, and expire with the staging."""
    if not digests:
        return
    params = {"run_id": run_id, "digests": list(digests), "base": SEQ_BASE}
    for table in (SALES.staging, SALES_UTM.staging):
        wh.command(
            f"DELETE FROM {table} WHERE run_id = {{run_id:String}} AND _seq >= {{base:UInt64}} "
            "AND page_digest IN {digests:Array(String)}",
            params,
        )


def in_id_order(reads: Sequence[PageRead]) -> bool:
    """Whether pages (in page order) hold ascending numeric ids, so that no order is on two."""
    last = 0
    for read in sorted(reads, key=lambda r: r.page):
        if not read.orders:
            continue
        if read.first_number <= last:
            return False
        last = read.last_number
    return True


def drop_repeats(wh: Warehouse, run_id: str) -> int:
    """Keep one sale per order id among the engine's rows of this run (an order on two pages,
    because paging shifted while it was read, counts once, as the Python reader has it);
    returns how many rows went. Only called when the pages are not in id order."""
    params = {"run_id": run_id, "base": SEQ_BASE}
    repeats = (
        f"SELECT _seq FROM {SALES.staging} WHERE run_id = {{run_id:String}} "
        "AND _seq >= {base:UInt64} AND order_id != '' "
        "AND (order_id, _seq) NOT IN (SELECT order_id, min(_seq) FROM "
        f"{SALES.staging} WHERE run_id = {{run_id:String}} AND _seq >= {{base:UInt64}} "
        "AND order_id != '' GROUP BY order_id)"
    )
    seqs = [int(r[0]) for r in wh.rows(repeats, params)]
    if seqs:
        for table in (SALES.staging, SALES_UTM.staging):
            wh.command(
                f"DELETE FROM {table} WHERE run_id = {{run_id:String}} "
                "AND _seq IN {seqs:Array(UInt64)}",
                {**params, "seqs": seqs},
            )
    return len(seqs)
