"""Copying staged rows of unchanged pages forward, and the page marks that allow it."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

from factrows import sale
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import SALES
from zakaz_common.load import Scope, Stager, carry_staged, publish
from zakaz_common.pagemarks import PageMark, digest, last_marks, record_marks

DAY = date(2026, 11, 2)


def staged(wh: Warehouse, run_id: str) -> list[tuple[object, ...]]:
    return wh.rows(
        "SELECT _seq, page_digest, event_id, event_name, city, tickets_sold, revenue "
        "FROM stg_qtickets_sales WHERE run_id = {r:String} ORDER BY _seq",
        {"r": run_id},
    )


def stage_pages(wh: Warehouse, run_id: str, pages: dict[str, list[dict[str, object]]]) -> Stager:
    stager = Stager(wh, SALES, run_id, int(time.time()), extra=("page_digest",))
    for page, rows in pages.items():
        for row in rows:
            stager.add({**row, "page_digest": page})
    stager.flush()
    return stager


def test_carried_rows_take_this_runs_attributes_and_follow_its_own_rows(wh: Warehouse) -> None:
    old = {
        "p1": [sale(DAY, "1", 2, "100.00", "qtickets_api", "москва", "Старое имя")],
        "p2": [sale(DAY, "2", 1, "50.50", "qtickets_api", "казань", "Лекция")],
    }
    stage_pages(wh, "before", old)
    mine = stage_pages(wh, "now", {"p3": [sale(DAY, "3", 4, "10.00", "qtickets_api")]})

    copied = carry_staged(
        wh,
        SALES,
        from_run="before",
        to_run="now",
        loaded_at=int(time.time()),
        tag="page_digest",
        values=["p1"],
        seq_offset=mine.staged,
        lookups={"event_name": ("event_id", {"1": "Новое имя"}), "city": ("event_id", {})},
    )

    assert copied == 1
    rows = staged(wh, "now")
    assert [r[:5] for r in rows] == [
        (0, "p3", "3", "Шоу 3", "москва"),
        (1, "p1", "1", "Новое имя", ""),
    ]
    assert rows[1][5:] == (2, Decimal("100.00"))
    assert len(staged(wh, "before")) == 2  # the earlier run's rows stay where they were
    result = publish(wh, SALES, "now", Scope(equals={"source": ["qtickets_api"]}))
    assert result.upserted == 2


def test_nothing_to_carry_copies_nothing(wh: Warehouse) -> None:
    stage_pages(wh, "before", {"p1": [sale(DAY, "1", 2, "1.00", "qtickets_api")]})

    copied = carry_staged(
        wh,
        SALES,
        from_run="before",
        to_run="now",
        loaded_at=int(time.time()),
        tag="page_digest",
        values=[],
        seq_offset=0,
    )

    assert copied == 0
    assert staged(wh, "now") == []


def test_the_last_run_with_marks_is_the_history_and_a_changed_digest_is_not_known(
    wh: Warehouse,
) -> None:
    a, b = digest(b'{"data":[1]}'), digest(b'{"data":[2]}')
    record_marks(wh, "src", "orders/v1", "w1", "r1", [PageMark(1, a, 100, 100, 150, {"x": 1})])
    time.sleep(1.1)  # marks are ordered by their second
    record_marks(wh, "src", "orders/v1", "w1", "r2", [PageMark(1, b, 50, 100, 150, {"x": 2})])
    record_marks(wh, "src", "orders/v1", "w2", "r3", [PageMark(1, a, 1, 100, 1)])

    history = last_marks(wh, "src", "orders/v1", "w1")

    assert history.run_id == "r2"
    assert history.unchanged(1, a) is None
    assert history.unchanged(1, b) == PageMark(1, b, 50, 100, 150, {"x": 2})
    assert history.unchanged(2, b) is None
    assert last_marks(wh, "src", "orders/v2", "w1").marks == {}
    assert last_marks(wh, "other", "orders/v1", "w1").run_id == ""
