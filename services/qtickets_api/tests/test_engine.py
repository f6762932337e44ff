"""The engine reads pages of orders: it must agree with the Python reader on every page.

The SQL reads a strict subset of the shapes `read_order` accepts and hands every other page to
the Python reader; these tests put one order per page so that each order is compared on its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from qtickets_support import Sandbox, expected_sales, run, view_sales
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import LoadError
from zakaz_common.pagemarks import PageHistory, digest
from zakaz_common.timeutil import today_msk
from zakaz_qtickets_api.client import RAW_MIN_BYTES, Page, read_page, tail_paging
from zakaz_qtickets_api.engine import PageRead, in_id_order
from zakaz_qtickets_api.orders import OrderStream, Staging
from zakaz_qtickets_api.privacy import safe_order
from zakaz_qtickets_api.transform import EventInfo

SINCE, TO = date(2026, 9, 1), date(2026, 9, 30)
EVENTS = {
    "24001": EventInfo("24001", "Стендап «Ёлка»", date(2026, 12, 1), "москва", ("1",)),
    "7": EventInfo("7", "Лекция", None, "санкт-петербург", ("2",)),
}
PAID = "2026-09-10T12:00:00+03:00"


def basket(price: Any = 1500, quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "price": price,
        "quantity": quantity,
        "deleted_at": None,
        "refunded_at": None,
        "client_email": "anna@example.ru",
        "client_phone": "+7 999 000-11-22",
        **extra,
    }


def order(**fields: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": 1,
        "payed": True,
        "payed_at": PAID,
        "deleted_at": None,
        "event_id": 24001,
        "client": {"email": "anna@example.ru", "details": {"phone": "+79990001122"}},
        "utm": [],
        "baskets": [basket()],
    }
    found.update(fields)
    return found


#: Orders the SQL reads itself, each with what makes it interesting.
STRICT = {
    "plain": order(),
    "paid as 1": order(payed=1),
    "paid as '1'": order(payed="1"),
    "unpaid": order(payed=False),
    "unpaid as '0'": order(payed="0"),
    "unpaid null": order(payed=None),
    "cancelled": order(deleted_at="2026-09-11T10:00:00+03:00"),
    "zero date is not cancelled": order(deleted_at="0000-00-00 00:00:00"),
    "late utc": order(payed_at="2026-09-09T23:30:00+00:00"),
    "minus offset": order(payed_at="2026-09-10T22:30:00-05:00"),
    "before the window": order(payed_at="2026-08-31T20:59:59+00:00"),
    "event as text with zeros": order(event_id="0007"),
    "unknown event": order(event_id=99),
    "refunded": order(baskets=[basket(refunded_at="2026-09-12T10:00:00+03:00")]),
    "no baskets": order(baskets=[]),
    "null baskets": order(baskets=None),
    "deleted and live baskets": order(
        baskets=[basket(deleted_at="2026-09-12T10:00:00+03:00"), basket(900, 2)]
    ),
    "price with kopecks": order(baskets=[basket("1500.5"), basket(999.99)]),
    "quantity as text": order(baskets=[basket(quantity="3")]),
    "utm object": order(
        utm={"utm_source": "vk", "utm_medium": "cpc", "utm_content": "msk_02_12", "x": 1}
    ),
    "utm null tag": order(utm={"utm_source": None, "utm_campaign": "123"}),
    "utm cyrillic": order(utm={"utm_campaign": "Ёлка-2026"}),
    "utm words": order(utm={"utm_term": "лекция «ёлки и их история» екатеринбург"}),
    "utm empty string": order(utm=""),
    "utm empty object": order(utm={}),
    "utm tag of 15 digits": order(utm={"utm_campaign": "123456789012345"}),
    "utm tag of 200 letters": order(utm={"utm_content": "ё" * 200}),
    "utm tags in every field": order(
        utm={
            t: f"{t}-2026"
            for t in ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
        }
    ),
}
#: Orders outside the strict shapes: their page goes to the Python reader.
LOOSE = {
    "paid as 'yes'": order(payed="yes"),
    "paid as ' 1 '": order(payed=" 1 "),
    "deleted blank": order(deleted_at=" "),
    "basket deleted blank": order(baskets=[basket(deleted_at=" "), basket(900, 2)]),
    "basket refunded blank": order(baskets=[basket(refunded_at=" ")]),
    "no payed_at": order(payed_at=None),
    "stamp without offset": order(payed_at="2026-09-10 12:00:00"),
    "impossible day": order(payed_at="2026-02-30T12:00:00+03:00"),
    "impossible offset": order(payed_at="2026-09-10T12:00:00+25:00"),
    "no event": order(event_id=None),
    "negative event": order(event_id=-5),
    "long event id": order(event_id="79990001122"),
    "negative price": order(baskets=[basket(-100)]),
    "russian price": order(baskets=[basket("1 500,00")]),
    "price with three decimals": order(baskets=[basket(1500.555)]),
    "fractional quantity": order(baskets=[basket(quantity=1.5)]),
    "basket not an object": order(baskets=[5]),
    "baskets as text": order(baskets=""),
    "utm as query": order(utm="utm_source=vk&utm_medium=cpc"),
    "utm tag with spaces": order(utm={"utm_source": "  vk   ads "}),
    "utm tag with two spaces": order(utm={"utm_term": "стендап  казань"}),
    "utm tag with nbsp": order(utm={"utm_source": "vk\u00a0ads"}),
    "utm tag with e-mail": order(utm={"utm_source": "anna@example.ru"}),
    "utm tag true": order(utm={"utm_source": True}),
    "utm tag float": order(utm={"utm_source": 1.50}),
    "utm tag object": order(utm={"utm_source": {"a": 1}}),
    "utm number": order(utm=5),
    "paid as 1.0": order(payed=1.0),
    "event as 1.0": order(event_id=1.0),
    "utm tag 1.0": order(utm={"utm_source": 1.0}),
    "utm tag of 16 digits": order(utm={"utm_term": "1234567890123456"}),
    "utm tag of 201 letters": order(utm={"utm_content": "ё" * 201}),
    "utm tag 'e'": order(utm={"utm_medium": "e"}),
    "utm tag '-5'": order(utm={"utm_medium": "-5"}),
    "utm tag 'false'": order(utm={"utm_campaign": "false"}),
    "utm tag with a control character": order(utm={"utm_source": "vk\u0001cpc"}),
    "utm last tag as a number word": order(utm={"utm_source": "vk", "utm_term": "1e5"}),
    # What a tester saw stop a run or vanish: each is a reject (or a sale) on both paths.
    "quantity 10**20": order(baskets=[basket(quantity=10**20)]),
    "quantity of 20 nines": order(baskets=[basket(quantity="99999999999999999999")]),
    "price 1e300": order(baskets=[basket(price=1e300)]),
    "negative quantity": order(baskets=[basket(quantity=-5)]),
    "baskets as an empty object": order(baskets={}),
    "baskets as an object": order(baskets={"1": basket()}),
    "utm as a list": order(utm=["utm_source=vk"]),
    "utm tag with control characters": order(utm={"utm_source": "24080\x00\x1b[31m"}),
    "event id with control characters": order(event_id="24080\x00\x1b[31m"),
}


def pages_of(orders: list[dict[str, Any]]) -> list[bytes]:
    """One order per page, padded past RAW_MIN_BYTES with a field neither reader uses."""
    total = len(orders)
    return [
        json.dumps(
            {
                "padding": "x" * RAW_MIN_BYTES,
                "data": [{**o, "id": n}],
                "paging": {"perPage": 1, "currentPage": n, "total": total},
            },
            ensure_ascii=False,
        ).encode()
        for n, o in enumerate(orders, 1)
    ]


def read(
    wh: Warehouse,
    run_id: str,
    pages: list[bytes],
    *,
    raw: bool,
    fetched: list[int] | None = None,
    read_bytes: int | None = None,
) -> OrderStream:
    """Read `pages` as the source does; pages fetched again are noted in `fetched`."""

    def refetch(number: int) -> Page:
        (fetched if fetched is not None else []).append(number)
        return read_page("orders", number, pages[number - 1], safe_order, PageHistory())

    stream = OrderStream(SINCE, TO, EVENTS, Staging(wh, run_id, int(time.time())), refetch=refetch)
    if read_bytes is not None:
        stream.read_bytes = read_bytes
    try:
        for number, body in enumerate(pages, 1):
            stream.feed(read_page("orders", number, body, safe_order, PageHistory(), raw=raw))
        stream.finish()
    finally:
        stream.close()
    return stream


def staged(wh: Warehouse, run_id: str) -> Counter[tuple[Any, ...]]:
    sales = wh.rows(
        "SELECT page_digest, sale_date, event_id, event_name, city, tickets_sold, revenue "
        "FROM stg_qtickets_sales WHERE run_id = {r:String}",
        {"r": run_id},
    )
    utm = wh.rows(
        "SELECT page_digest, sale_date, event_id, utm_source, utm_medium, utm_campaign, "
        "utm_content, utm_term, tickets_sold, revenue FROM stg_qtickets_sales_utm "
        "WHERE run_id = {r:String}",
        {"r": run_id},
    )
    return Counter(("sales", *r) for r in sales) + Counter(("utm", *r) for r in utm)


@pytest.mark.parametrize(("kind", "orders"), [("strict", STRICT), ("loose", LOOSE)])
def test_the_engine_and_the_python_reader_stage_the_same_rows_page_by_page(
    wh: Warehouse, kind: str, orders: dict[str, dict[str, Any]]
) -> None:
    pages = pages_of(list(orders.values()))

    by_engine = read(wh, f"engine-{kind}", pages, raw=True)
    by_python = read(wh, f"python-{kind}", pages, raw=False)

    assert staged(wh, f"engine-{kind}") == staged(wh, f"python-{kind}")
    assert by_engine.counts == by_python.counts
    assert by_engine.revenue == by_python.revenue
    assert [r.reason for r in by_engine.rejects] == [r.reason for r in by_python.rejects]
    assert by_engine.marks == by_python.marks
    assert by_python.engine_pages == 0
    if kind == "strict":
        assert by_engine.engine_pages == len(pages)  # every one read by SQL
        assert by_engine.counts["sales_rows"] > 10
    else:
        assert by_engine.engine_pages == 0  # every one handed to Python
        assert by_engine.rejects


def test_a_mixed_page_goes_to_python_whole_and_its_engine_rows_are_dropped(
    wh: Warehouse,
) -> None:
    mixed = [{**order(), "id": 1}, {**order(payed="yes"), "id": 2}, {**order(), "id": 3}]
    body = json.dumps(
        {
            "padding": "x" * RAW_MIN_BYTES,
            "data": mixed,
            "paging": {"perPage": 3, "currentPage": 1, "total": 3},
        }
    ).encode()

    stream = read(wh, "mixed", [body], raw=True)

    assert stream.engine_pages == 0
    assert stream.counts["orders"] == 3 and stream.counts["orders_rejected"] == 1
    assert sum(n for (table, *_), n in staged(wh, "mixed").items() if table == "sales") == 2


def test_a_page_with_a_repeated_key_goes_to_python(wh: Warehouse) -> None:
    # JSON readers disagree on `{"payed": false, "payed": true}`: Python takes the last value.
    page = json.dumps(
        {
            "padding": "x" * RAW_MIN_BYTES,
            "data": [order()],
            "paging": {"perPage": 1, "currentPage": 1, "total": 1},
        }
    ).replace('"payed": true', '"payed": false, "payed": true')

    by_engine = read(wh, "repeated-key", [page.encode()], raw=True)
    by_python = read(wh, "repeated-key-python", [page.encode()], raw=False)

    assert by_engine.engine_pages == 0
    assert by_engine.counts["sales_rows"] == by_python.counts["sales_rows"] == 1
    assert staged(wh, "repeated-key") == staged(wh, "repeated-key-python")


def test_the_sandbox_pages_are_read_by_the_engine_except_the_one_with_a_reject(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    summary = run(wh)
    dry = run(wh, dry_run=True)  # the Python reader alone

    assert 0 < summary.counts["pages_read_by_engine"] < summary.counts["order_pages"]
    assert dry.counts["pages_read_by_engine"] == 0
    for key in (
        "orders",
        "orders_unpaid",
        "orders_cancelled",
        "orders_refunded",
        "orders_rejected",
        "orders_outside_window",
        "sales_rows",
        "tickets_sold",
        "revenue",
        "sales_keys",
    ):
        assert summary.counts.get(key, 0) == dry.counts.get(key, 0), key
    today = today_msk()
    assert {k: v[:2] for k, v in view_sales(wh).items()} == expected_sales(
        qt_env.orders(), today - timedelta(days=29), today
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"data":[{"id":1}],"paging":{"perPage":100,"currentPage":2,"total":250}}',
            (100, 250, 2),
        ),
        (
            b'{"data": [],\n "paging": {"perPage": "50", "currentPage": 1, "total": 0}\n}\n',
            (50, 0, 1),
        ),
        (b'{"paging":{"perPage":100,"currentPage":1,"total":5},"data":[{"id":1}]}', None),
        (b'{"data":[{"utm":{"paging":1}}]}', None),
        (b'{"data":[],"paging":{"perPage":0,"currentPage":1,"total":5}}', None),
        (b'{"data":[],"paging":[1,2,3]}', None),
        (b"<html>502</html>", None),
    ],
)
def test_paging_is_read_from_the_tail_of_a_page_or_not_at_all(
    body: bytes, expected: tuple[int, int, int] | None
) -> None:
    assert tail_paging(body) == expected


def test_a_failing_feed_raises_on_close_and_leaves_no_thread_behind(wh: Warehouse) -> None:
    line = b'{"a": 1}\n'
    count = 50_000  # more than a pipe holds

    feed = wh.feed("INSERT INTO no_such_table SELECT a FROM {rows}", "a UInt8", "JSONEachRow")
    for _ in range(count):
        feed.write(line)
    with pytest.raises(LoadError):
        feed.close()

    wh.command("CREATE TABLE fed (a UInt8) ENGINE = MergeTree ORDER BY a")
    feed = wh.feed("INSERT INTO fed SELECT a FROM {rows}", "a UInt8", "JSONEachRow")
    for _ in range(count):
        feed.write(b'{"a": ', b"1}\n")
    feed.close()
    assert wh.scalar("SELECT count() FROM fed") == count
    assert not [t for t in threading.enumerate() if t.name == "zakaz-feed"]


def test_the_thread_writing_a_feed_gets_an_error_not_a_hang_when_it_queries(
    wh: Warehouse,
) -> None:
    wh.command("CREATE TABLE fed_twice (a UInt8) ENGINE = MergeTree ORDER BY a")
    feed = wh.feed("INSERT INTO fed_twice SELECT a FROM {rows}", "a UInt8", "JSONEachRow")
    feed.write(b'{"a": 7}\n')

    with pytest.raises(RuntimeError, match="close the feed"):
        wh.scalar("SELECT 1")
    with pytest.raises(RuntimeError, match="already reading"):
        wh.feed("INSERT INTO fed_twice SELECT a FROM {rows}", "a UInt8", "JSONEachRow")

    feed.close()
    assert wh.scalar("SELECT sum(a) FROM fed_twice") == 7


def test_an_empty_feed_and_an_aborted_one_end_cleanly(wh: Warehouse) -> None:
    wh.command("CREATE TABLE fed_none (a UInt8) ENGINE = MergeTree ORDER BY a")
    wh.feed("INSERT INTO fed_none SELECT a FROM {rows}", "a UInt8", "JSONEachRow").close()
    aborted = wh.feed("INSERT INTO no_such_table SELECT a FROM {rows}", "a UInt8", "JSONEachRow")
    aborted.write(b'{"a": 1}\n')
    aborted.abort()

    assert wh.scalar("SELECT count() FROM fed_none") == 0


def test_only_the_pages_python_must_read_are_fetched_again(wh: Warehouse) -> None:
    orders = [order(), order(payed="yes"), order(), order(event_id=1.5)]
    pages = pages_of(orders)
    fetched: list[int] = []

    stream = read(wh, "refetch", pages, raw=True, fetched=fetched)

    assert fetched == [2, 4]
    assert stream.engine_pages == 2
    assert stream.counts["orders"] == 4


def test_a_page_that_changed_before_it_was_fetched_again_is_read_and_remembered_as_now(
    wh: Warehouse,
) -> None:
    sent = pages_of([order(payed="yes")])[0]  # unread by the engine: fetched again
    now = pages_of([order(baskets=[basket(900, 3)])])[0]
    stream = OrderStream(
        SINCE,
        TO,
        EVENTS,
        Staging(wh, "changed", int(time.time())),
        refetch=lambda n: read_page("orders", n, now, safe_order, PageHistory()),
    )
    stream.feed(read_page("orders", 1, sent, safe_order, PageHistory(), raw=True))
    stream.finish()

    assert [m.digest for m in stream.marks] == [digest(now)]
    assert stream.counts["tickets_sold"] == 3 and not stream.rejects
    assert [d for (table, d, *_) in staged(wh, "changed") if table == "sales"] == [digest(now)]


def test_a_stream_without_a_way_to_fetch_again_fails_loudly(wh: Warehouse) -> None:
    stream = OrderStream(SINCE, TO, EVENTS, Staging(wh, "no-refetch", int(time.time())))
    body = pages_of([order(payed="yes")])[0]
    stream.feed(read_page("orders", 1, body, safe_order, PageHistory(), raw=True))

    with pytest.raises(LoadError, match="cannot fetch it again"):
        stream.finish()
    stream.close()


def test_a_stream_split_into_several_engine_reads_stages_what_one_read_does(
    wh: Warehouse,
) -> None:
    pages = pages_of(list(STRICT.values()))

    whole = read(wh, "one-read", pages, raw=True)
    split = read(wh, "many-reads", pages, raw=True, read_bytes=3 * RAW_MIN_BYTES)

    assert split.engine_pages == whole.engine_pages == len(pages)
    assert staged(wh, "many-reads") == staged(wh, "one-read")
    assert split.counts == whole.counts and split.marks == whole.marks


def test_a_failing_run_stops_the_engine_read_and_the_warehouse_stays_usable(
    wh: Warehouse,
) -> None:
    pages = pages_of(list(STRICT.values()))
    stream = OrderStream(SINCE, TO, EVENTS, Staging(wh, "failing", int(time.time())))
    for number, body in enumerate(pages[:3], 1):
        stream.feed(read_page("orders", number, body, safe_order, PageHistory(), raw=True))

    stream.close()  # what the job does when the upstream fails mid-listing

    assert wh.scalar("SELECT 1") == 1
    assert not [t for t in threading.enumerate() if t.name == "zakaz-feed"]


def test_when_the_engine_fails_python_reads_the_batch_and_nothing_is_lost(
    wh: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    pages = pages_of(list(STRICT.values()))
    by_python = read(wh, "python-only", pages, raw=False)
    # The engine's insert now fails on its page counts, after the views may have staged some
    # sales: whatever they did is taken back before Python stages the pages again.
    wh.command(
        "ALTER TABLE stg_qtickets_order_pages "
        "ADD CONSTRAINT engine_down CHECK run_id != 'engine-down'"
    )
    try:
        by_engine = read(wh, "engine-down", pages, raw=True)
    finally:
        wh.command("ALTER TABLE stg_qtickets_order_pages DROP CONSTRAINT engine_down")

    assert by_engine.engine_pages == 0
    assert staged(wh, "engine-down") == staged(wh, "python-only")
    assert by_engine.counts == by_python.counts
    assert "the Python reader takes them" in caplog.text
    assert "anna@example.ru" not in caplog.text


def test_an_order_on_two_pages_is_staged_once(wh: Warehouse) -> None:
    # Paging shifted while the pages were read: the last order of page 1 is again on page 2.
    first = [{**order(), "id": 10}, {**order(baskets=[basket(900, 2)]), "id": 11}]
    second = [{**order(baskets=[basket(900, 2)]), "id": 11}, {**order(), "id": 12}]
    pages = [
        json.dumps(
            {
                "padding": "x" * RAW_MIN_BYTES,
                "data": data,
                "paging": {"perPage": 2, "currentPage": n, "total": 4},
            }
        ).encode()
        for n, data in enumerate((first, second), 1)
    ]

    stream = read(wh, "shifted", pages, raw=True)

    assert stream.engine_pages == 2
    rows = staged(wh, "shifted")
    assert sum(n for (table, *_), n in rows.items() if table == "sales") == 3
    assert sum(n for (table, *_), n in rows.items() if table == "utm") == 3
    tickets = wh.scalar("SELECT sum(tickets_sold) FROM stg_qtickets_sales WHERE run_id = 'shifted'")
    assert tickets == 1 + 2 + 1


def test_pages_in_id_order_share_no_order() -> None:
    def page(number: int, first: int, last: int, orders: int = 2) -> PageRead:
        return PageRead("d", number, 2, 9, orders, 0, {}, Decimal(0), first, last)

    assert in_id_order([page(2, 30, 40), page(1, 10, 20)])
    assert in_id_order([page(1, 10, 20), page(2, 0, 0, orders=0), page(3, 21, 22)])
    assert not in_id_order([page(1, 10, 20), page(2, 20, 30)])
    assert not in_id_order([page(1, 10, 20), page(2, 15, 30)])
    assert not in_id_order([page(1, 0, 20)])  # an id that is not a number


def test_a_page_left_for_the_engine_is_read_by_python_when_nothing_may_be_staged() -> None:
    pages = pages_of(list(STRICT.values()))
    dry = OrderStream(SINCE, TO, EVENTS, None)

    for number, body in enumerate(pages, 1):
        dry.feed(read_page("orders", number, body, safe_order, PageHistory(), raw=True))
    dry.finish()

    assert dry.counts["orders"] == len(STRICT)
    assert dry.counts["sales_rows"] > 10
    assert dry.engine_pages == 0


def test_orders_outside_the_column_ranges_or_shapes_are_rejects_on_the_engine_path(
    wh: Warehouse,
) -> None:
    # The tester's cases: `{}` baskets vanished as refunded, 10**20 tickets stopped the run.
    # The engine cannot parse a baskets object (nor read 10**20 as plain digits), so those
    # pages go to the Python reader, which now rejects what it used to skip or stage.
    pages = pages_of(
        [
            order(),
            order(baskets={}),
            order(baskets={"1": basket()}),
            order(baskets=[basket(quantity=10**20)]),
            order(utm={"utm_source": "vk\x00\x1b[31m"}),
        ]
    )
    stream = read(wh, "shapes", pages, raw=True)

    tags = dict.fromkeys(("utm_source", "utm_medium", "utm_campaign", "utm_content"), "")
    key = {"source": "qtickets_api", "sale_date": date(2026, 9, 10), "event_id": "24001"} | tags
    keyed = key | {"utm_term": ""}  # every tag read: the key is whole in the UTM fact too
    facts = ("fact_qtickets_sales_daily", "fact_qtickets_sales_utm_daily")
    no_source = {c: v for c, v in keyed.items() if c != "utm_source"}
    assert sorted((r.reason, r.key, r.facts) for r in stream.rejects) == [
        ("order '2': baskets is '<dict>', not a list", keyed, facts),
        ("order '3': baskets is '<dict>', not a list", keyed, facts),
        ("order '4': quantity: out of range for Int64: '1e+20'", keyed, facts),
        ("order '5': utm_source: control character U+0000 in 'vk\\x00\\x1b[31m'", no_source, facts),
    ]
    assert stream.counts["sales_rows"] == 1
    assert sum(staged(wh, "shapes").values()) == 2  # one sale, in both staging tables
