"""The demo's code path: every source once from the sandbox, checks, summary; twice, same numbers."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from zakaz_common.clickhouse import Warehouse
from zakaz_common.demo import run_demo
from zakaz_common.manifest import CONTRACT_SOURCES
from zakaz_common.settings import CoreSettings


def _numbers(wh: Warehouse) -> dict[str, object]:
    return {
        "sales": wh.rows(
            "SELECT sale_date, event_id, tickets_sold, revenue, source FROM v_sales_latest ORDER BY 1, 2"
        ),
        "spend": wh.rows(
            "SELECT platform, sum(spend) FROM v_marketing_daily GROUP BY platform ORDER BY 1"
        ),
        "romi": wh.rows(
            "SELECT city, event_date, revenue, spend, romi_color FROM v_romi_kpi ORDER BY 1, 2"
        ),
        "inventory": wh.rows(
            "SELECT event_id, tickets_total, tickets_left FROM v_inventory ORDER BY 1"
        ),
    }


def test_the_demo_loads_every_source_and_a_second_run_gives_the_same_numbers(
    wh: Warehouse, tmp_path: Path
) -> None:
    output = io.StringIO()
    console = Console(file=output, width=160, force_terminal=False)

    first = run_demo(wh, CoreSettings(), console, workdir=tmp_path / "secrets")
    numbers = _numbers(wh)
    second = run_demo(wh, CoreSettings(), console, workdir=tmp_path / "secrets")

    assert [r.source for r in first.runs] == list(CONTRACT_SOURCES)
    assert all(r.status == "success" for r in first.runs + second.runs), [
        r.message for r in first.runs
    ]
    assert first.ok and second.ok
    assert _numbers(wh) == numbers
    sales = numbers["sales"]
    assert isinstance(sales, list) and sales
    assert {row[4] for row in sales} >= {"qtickets_sheets", "qtickets_api"}
    romi = numbers["romi"]
    assert isinstance(romi, list) and any(
        row[3] > Decimal(0) and row[2] > Decimal(0) for row in romi
    )
    text = output.getvalue()
    for title in ("Продажи по городам и шоу", "Реклама по площадкам", "ROMI по шоу"):
        assert title in text
    assert "vk" in text and "direct" in text
    assert wh.scalar("SELECT count() FROM meta_job_runs WHERE trigger = 'demo'") == 10
