"""ClickHouse reads pages of orders itself: the fast path for CONTRACT §5 on big windows.

The pages go to the engine as they arrived (`Warehouse.insert_from_json`); the structure below
names the only fields it parses, so the buyer's fields are skipped unread and never exist as
values. One `INSERT … SELECT` gives every order a status (`sale`, `unpaid`, `cancelled`,
`refunded`, `outside_window`) and, for sales, its date, event, tickets, revenue and UTM tags,
into `stg_qtickets_orders`.

The SQL reads a strict subset of what the Python reader (`transform.read_order`) accepts: ISO
stamps with an offset, ids and amounts as plain digits, UTM tags of plain characters. Any order
outside it is `unread`, and a page that holds one, or that the engine could not parse at all, is
read again by the Python reader, which gives the exact result or the reject and its reason. So
both paths agree on every page by construction; `test_engine` checks it on generated orders.
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
#: differently).
_WORD: Final = "[0-9A-Za-zА-Яа-яЁё_.,:;/%+=!?()«»#&\\\\-]+"
_TAG_OK: Final = (
    "(lengthUTF8({t}) <= 200 AND match({t}, '^(" + _WORD + "( " + _WORD + ")*)?$') "
    "AND {t} NOT IN ('true', 'false') "
    "AND NOT (match({t}, '^[-+0-9.eE]+$') AND NOT match({t}, '^[0-9]{{1,15}}$')))"
)
_TAGS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def _state(x: str) -> str:
    return _STATE.format(x=x)


def _read_sql() -> str:
    tag_exprs = ",\n".join(
        f"if(variantType(o.utm) = 'Map(String, String)', "
        f"o.utm.`Map(String, String)`['{t}'], '') AS {t}"
        for t in _TAGS
    )
    tags_ok = " AND ".join(_TAG_OK.format(t=t) for t in _TAGS)
    return f"""
INSERT INTO stg_qtickets_orders
SELECT
    {{run_id:String}}, {{loaded_at:UInt32}}, digest, page_no, per_page, total, order_id,
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
    if(status = 'sale', toString(toUInt32OrZero(event_raw)), ''),
    if(status = 'sale', arraySum(b -> toInt64OrZero(ifNull(b.quantity, '')), live), 0),
    if(status = 'sale',
       CAST(arraySum(b -> toDecimal64OrZero(ifNull(b.price, ''), 2), live) AS Decimal(18, 2)),
       toDecimal64(0, 2)),
    {", ".join(_TAGS)}
FROM
(
    SELECT
        digest,
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
        arrayExists(b -> {_state("b.deleted_at")} = 2 OR {_state("b.refunded_at")} = 2,
                    o.baskets)
        OR arrayExists(b -> NOT match(ifNull(b.quantity, ''), '^[0-9]{{1,9}}$')
                            OR NOT match(ifNull(b.price, ''), '^[0-9]{{1,9}}(\\\\.[0-9]{{1,2}})?$'),
                       arrayFilter(b -> {_state("b.deleted_at")} = 0
                                        AND {_state("b.refunded_at")} = 0, o.baskets))
            AS baskets_unread,
        arrayFilter(b -> {_state("b.deleted_at")} = 0 AND {_state("b.refunded_at")} = 0,
                    o.baskets) AS live,
        {tag_exprs},
        (variantType(o.utm) IN ('None', 'Array(String)', 'Map(String, String)')
         OR (variantType(o.utm) = 'String' AND o.utm.String = '')) AND {tags_ok} AS utm_ok
    FROM {{rows}}
    ARRAY JOIN page.data AS o
)
"""


READ_SQL: Final = _read_sql()
#: A page that does not parse is skipped by the engine (and so read by Python), not fatal.
READ_SETTINGS: Final = {
    "input_format_allow_errors_ratio": 1,
    "input_format_allow_errors_num": 1_000_000_000,
    "input_format_skip_unknown_fields": 1,
    "input_format_null_as_default": 1,
    # Every branch is total (the *OrZero/*OrNull functions never throw), and evaluating the
    # status branches lazily costs three times the parsing itself.
    "short_circuit_function_evaluation": "'disable'",
}


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


def read_pages(
    wh: Warehouse,
    run_id: str,
    loaded_at: int,
    since: date,
    to: date,
    pages: Sequence[tuple[str, bytes]],
) -> dict[str, PageRead]:
    """Have the engine read `(digest, body)` pages; returns what it read, by page digest.

    A page missing from the answer could not be parsed (or holds no order); a page with
    `unread` orders holds an order outside the strict shapes. Both are for the Python reader.
    """
    lines: list[bytes] = []
    for page_digest, body in pages:
        # One line per page (a raw newline in JSON is only ever whitespace between tokens).
        lines += (
            b'{"digest":"' + page_digest.encode() + b'","page":',
            body.replace(b"\n", b" ") if b"\n" in body else body,
            b"}\n",
        )
    params: dict[str, Any] = {"run_id": run_id, "loaded_at": loaded_at, "since": since, "to": to}
    wh.insert_from_json(READ_SQL, STRUCTURE, lines, params, READ_SETTINGS)
    rows = wh.rows(
        """
        SELECT page_digest, any(page), any(per_page), any(total), count(),
               countIf(status = 'unread'), countIf(status = 'unpaid'),
               countIf(status = 'cancelled'), countIf(status = 'refunded'),
               countIf(status = 'outside_window'), countIf(status = 'sale'),
               sumIf(tickets_sold, status = 'sale'), sumIf(revenue, status = 'sale')
        FROM stg_qtickets_orders
        WHERE run_id = {run_id:String} AND page_digest IN {digests:Array(String)}
        GROUP BY page_digest
        """,
        {"run_id": run_id, "digests": [d for d, _ in pages]},
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
        )
    return found


#: Insert blocks of at most ~100k rows: by default an INSERT … SELECT squashes up to a million
#: rows into one block, which for a big window would hold every sale in memory at once.
_BOUNDED: Final = (
    "min_insert_block_size_rows = 65536, min_insert_block_size_bytes = 8388608, max_threads = 1"
)


def stage_sales(
    wh: Warehouse,
    run_id: str,
    excluded: Sequence[str],
    seq_offsets: Mapping[str, int],
    lookups: Mapping[str, tuple[str, Mapping[str, str]]],
) -> None:
    """Stage the engine's sales of this run (pages in `excluded` went to the Python reader)."""
    params: dict[str, Any] = {
        "run_id": run_id,
        "excluded": list(excluded),
        "sales_offset": seq_offsets[SALES.fact],
        "utm_offset": seq_offsets[SALES_UTM.fact],
    }
    name, city = (lookup(*lookups[c], params) for c in ("event_name", "city"))
    sales = (
        "SELECT * FROM stg_qtickets_orders WHERE run_id = {run_id:String} AND status = 'sale' "
        "AND page_digest NOT IN {excluded:Array(String)}"
    )
    repeated = wh.scalar(f"SELECT count() - uniqExact(order_id) FROM ({sales})", params)
    if repeated:
        # An order on two pages (paging shifted while it was read) counts once, as the Python
        # reader has it; only then is the memory for a set of every order id spent.
        sales += " LIMIT 1 BY order_id"
    wh.command(
        f"""
        INSERT INTO {SALES.staging} (run_id, _seq, loaded_at, page_digest, source, sale_date,
                                     event_id, event_name, city, tickets_sold, revenue)
        SELECT run_id, {{sales_offset:UInt64}} + rowNumberInAllBlocks(), loaded_at, page_digest,
               'qtickets_api', sale_date, event_id,
               {name}, {city},
               tickets_sold, revenue
        FROM ({sales})
        SETTINGS {_BOUNDED}
        """,
        params,
    )
    wh.command(
        f"""
        INSERT INTO {SALES_UTM.staging} (run_id, _seq, loaded_at, page_digest, source, sale_date,
                                         event_id, {", ".join(_TAGS)}, tickets_sold, revenue)
        SELECT run_id, {{utm_offset:UInt64}} + rowNumberInAllBlocks(), loaded_at, page_digest,
               'qtickets_api', sale_date, event_id, {", ".join(_TAGS)}, tickets_sold, revenue
        FROM ({sales})
        SETTINGS {_BOUNDED}
        """,
        params,
    )
