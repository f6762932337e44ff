"""The demo's code path: every source once from the sandbox, checks, summary; twice, same numbers."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from zakaz_common.clickhouse import Warehouse
from zakaz_common.demo import ROMI_CAPTION, UNATTRIBUTED_LABEL, romi_lines, run_demo
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
    _check_romi_table(wh, text)


def _last_romi_table(text: str) -> list[str]:
    """The lines of the last ROMI table printed, from its title to its caption."""
    start = text.rindex("ROMI по шоу (v_romi_kpi)")
    end = text.index("ROMI = выручка", start)
    return text[start:end].splitlines()


def _check_romi_table(wh: Warehouse, text: str) -> None:
    """The ROMI table names each show and keeps spend that names no show on a line apart."""
    shows, unattributed = romi_lines(wh)
    events = {
        (city, event_date): name
        for city, event_date, name in wh.rows("SELECT city, event_date, event_name FROM dim_events")
    }
    assert shows and all(line.shows for line in shows)
    for line in shows:
        assert events[(line.city, line.event_date)] in line.shows
    # The sandbox has an ad tagged `unknown_12_12`: parsed, but no show is in that city.
    assert "unknown" not in {line.city for line in shows}
    assert any(label.startswith("нет шоу unknown") for label in unattributed.parts)
    assert "utm_content не разобран" in unattributed.parts
    # Nothing is lost between the two: every rouble of spend is on a show or on the line apart.
    total_vk, total_direct = wh.rows(
        "SELECT sumIf(spend, platform = 'vk'), sumIf(spend, platform = 'direct') "
        "FROM v_marketing_daily"
    )[0]
    assert sum(line.spend_vk for line in shows) + unattributed.spend_vk == total_vk
    assert sum(line.spend_direct for line in shows) + unattributed.spend_direct == total_direct
    assert unattributed.spend_vk > 0 and unattributed.spend_direct > 0

    assert ROMI_CAPTION.split(";")[0] in text and "ROAS" in text and "безубыточность" in text
    table = _last_romi_table(text)
    apart = [line for line in table if UNATTRIBUTED_LABEL in line]
    assert len(apart) == 1 and "●" not in apart[0], apart
    assert not [line for line in table if "unknown" in line and "●" in line]
    for line in shows:
        row = next(r for r in table if line.city in r and str(line.event_date) in r)
        assert line.shows[0] in row and "●" in row
