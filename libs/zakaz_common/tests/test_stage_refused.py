"""A block the warehouse refuses: the refused rows alone are rejected, the rest is staged."""

from __future__ import annotations

import json
import time
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from factrows import sale
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import LoadError
from zakaz_common.facts import SALES
from zakaz_common.load import Reject, Stager, stage
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import RunRequest, execute
from zakaz_common.settings import CoreSettings

DAY = date(2026, 11, 2)


def staged(wh: Warehouse, run_id: str) -> list[tuple[Any, ...]]:
    return wh.rows(
        "SELECT _seq, event_id, tickets_sold, revenue FROM stg_qtickets_sales "
        "WHERE run_id = {r:String} ORDER BY _seq",
        {"r": run_id},
    )


def test_refused_rows_are_found_and_rejected_and_the_others_staged(wh: Warehouse) -> None:
    # Raw values the field readers would have stopped: the warehouse refuses each.
    rows = [sale(DAY, str(i), 1, "10.00") for i in range(10)]
    rows[3]["tickets_sold"] = 10**20
    rows[7]["revenue"] = Decimal("1E+17")
    rows[8]["event_name"] = "a\udc80"
    rejects: list[Reject] = []
    stager = Stager(wh, SALES, "r1", int(time.time()), batch_rows=4, on_reject=rejects.append)
    stager.extend(rows)
    stager.flush()

    assert [(s, e) for s, e, _, _ in staged(wh, "r1")] == [
        (i, str(i)) for i in (0, 1, 2, 4, 5, 6, 9)
    ]
    assert [r.key for r in rejects] == [
        {"source": "qtickets_sheets", "sale_date": DAY, "event_id": e} for e in ("3", "7", "8")
    ]
    assert all(r.facts == (SALES.fact,) and r.entity == SALES.staging for r in rejects)
    assert rejects[0].reason.startswith("tickets_sold: the warehouse refused the value (")
    assert rejects[1].reason.startswith("revenue: the warehouse refused the value (")
    assert rejects[2].reason.startswith("the warehouse refused the value (UnicodeEncodeError")
    # The reason never carries the value itself.
    assert "100000000000000000000" not in rejects[0].reason
    assert "\udc80" not in rejects[2].reason
    assert isinstance(rejects[0].raw, dict) and rejects[0].raw["tickets_sold"] == repr(str(10**20))


def test_a_refused_key_column_is_left_out_of_the_key(wh: Warehouse) -> None:
    bad = sale(DAY, "7", 1, "10.00")
    bad["event_id"] = None
    rejects: list[Reject] = []
    assert stage(wh, SALES, "r2", [bad], int(time.time()), on_reject=rejects.append) == 1
    assert staged(wh, "r2") == []
    assert rejects[0].reason.startswith("event_id: the warehouse refused the value")
    assert rejects[0].key == {"source": "qtickets_sheets", "sale_date": DAY}


def test_without_a_callback_a_refused_block_fails_as_before(wh: Warehouse) -> None:
    bad = sale(DAY, "7", 1, "10.00")
    bad["tickets_sold"] = 10**20
    with pytest.raises(LoadError, match="tickets_sold"):
        stage(wh, SALES, "r3", [sale(DAY, "1", 1, "1.00"), bad], int(time.time()))


def test_a_run_records_the_row_the_warehouse_refused_and_loads_the_rest(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sample source stages its ticket counts unchecked: 10**20 reaches the warehouse.
    rows = [["2025-06-01", 1, 2, "100"], ["2025-06-02", 2, 10**20, "700"]]
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps(rows))

    summary = execute(sample, RunRequest(), wh=wh, core=core)

    assert summary.status == "success", summary.message
    assert summary.rows_rejected == 1
    assert wh.rows(
        "SELECT sale_date, event_id, tickets_sold FROM fact_qtickets_sales_daily FINAL "
        "WHERE _deleted = 0"
    ) == [(date(2025, 6, 1), "1", 2)]
    [(entity, reason)] = wh.rows(
        "SELECT entity, reason FROM rejects WHERE run_id = {r:String}", {"r": summary.run_id}
    )
    assert entity == SALES.staging
    assert reason.startswith("tickets_sold: the warehouse refused the value (")


def test_a_systematic_refusal_fails_the_run_rather_than_rejecting_every_row(
    wh: Warehouse,
) -> None:
    rows = [sale(DAY, str(i), 1, "10.00") for i in range(8)]
    for row in rows:
        row["tickets_sold"] = str(10**20)  # a source bug: a whole column of the wrong type
    rejects: list[Reject] = []
    stager = Stager(wh, SALES, "r4", int(time.time()), on_reject=rejects.append, refused_max=5)
    stager.extend(rows)
    with pytest.raises(LoadError, match="refused more than 5 rows of stg_qtickets_sales"):
        stager.flush()
    assert len(rejects) == 5
