"""The load of `qtickets_sheets`: read the three tabs, parse them all, then stage and publish.

The sheet is a snapshot. Events and inventory are always replaced whole; sales are replaced
for the whole sheet, or only for the sale dates of `--since/--to/--days`. Every tab is parsed
before anything is staged, so a broken header in any tab fails the run with the warehouse
untouched. An unchanged sheet writes no fact row (`fact_rows_written: 0`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from zakaz_common.cities import CityDirectory
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import EVENTS, INVENTORY, SALES, live_events
from zakaz_common.load import PublishResult, Scope
from zakaz_common.runs import LoadOutcome, RunContext
from zakaz_common.timeutil import MSK

from zakaz_qtickets_sheets.client import SheetsClient
from zakaz_qtickets_sheets.settings import ROLES, get_settings
from zakaz_qtickets_sheets.transform import (
    INVENTORY_VALUES,
    SOURCE,
    SheetRows,
    in_window,
    parse_sheets,
    stamp_inventory,
)


def load(ctx: RunContext) -> LoadOutcome:
    """One run: the sheet as it is now replaces what this source loaded before."""
    settings = get_settings()
    tabs = {role: settings.tab(role) for role in ROLES}
    client = SheetsClient(settings, ctx.deadline)
    values = client.read(tabs)
    sheets = parse_sheets(
        {role: (v.title, v.rows) for role, v in values.items()},
        CityDirectory.bundled(),
        {event_id: name for event_id, (name, _, _) in live_events(ctx.wh, SOURCE).items()},
    )
    window = ctx.request.window(ctx.today, None)
    sales = [row for row in sheets.sales.rows if in_window(row, window)]
    counts: dict[str, Any] = {
        "window": f"{window[0]}..{window[1]}" if window else "whole sheet",
        "value_render": settings.value_render,
        **_read_counts(sheets, len(sales)),
        **client.stats.as_counts(),
    }
    processed = len(sheets.events.rows) + len(sheets.inventory.rows) + len(sales)
    rejected = len(sheets.rejects)
    if ctx.request.dry_run:
        return LoadOutcome(processed, rejected, counts, _message(counts, rejected, None))

    observed_at = datetime.fromtimestamp(ctx.loaded_at, MSK)
    counts["inventory_changed"] = stamp_inventory(
        sheets.inventory.rows, _live_inventory(ctx.wh), observed_at
    )
    ctx.stage(EVENTS, sheets.events.rows)
    ctx.stage(INVENTORY, sheets.inventory.rows)
    ctx.stage(SALES, sales)
    # Before publishing, so that the keys of rejected rows are held back rather than retracted.
    ctx.reject(sheets.rejects)
    mine = {"source": [SOURCE]}
    since, to = window if window else (None, None)
    published = {
        "events": ctx.publish(EVENTS, Scope(equals=mine)),
        "inventory": ctx.publish(INVENTORY, Scope(equals=mine)),
        "sales": ctx.publish(SALES, Scope(equals=mine, since=since, to=to)),
    }
    counts.update(_publish_counts(published))
    message = _message(counts, rejected, counts["fact_rows_written"])
    ctx.log.info("qtickets_sheets: %s", message)
    return LoadOutcome(processed, rejected, counts, message)


def _live_inventory(wh: Warehouse) -> dict[str, tuple[tuple[Any, ...], datetime]]:
    columns = ", ".join(INVENTORY_VALUES)
    found = wh.rows(
        f"SELECT event_id, tuple({columns}), updated_at FROM {INVENTORY.fact} FINAL "
        "WHERE source = {source:String} AND _deleted = 0",
        {"source": SOURCE},
    )
    return {str(event_id): (tuple(values), updated) for event_id, values, updated in found}


def _read_counts(sheets: SheetRows, sales_in_window: int) -> dict[str, int]:
    return {
        "events_rows": len(sheets.events.rows),
        "inventory_rows": len(sheets.inventory.rows),
        "sales_rows": len(sheets.sales.rows),
        "sales_rows_in_window": sales_in_window,
        "blank_rows": sheets.events.blank + sheets.inventory.blank + sheets.sales.blank,
        "rejected_events": len(sheets.events.rejects),
        "rejected_inventory": len(sheets.inventory.rejects),
        "rejected_sales": len(sheets.sales.rejects),
    }


def _publish_counts(published: dict[str, PublishResult]) -> dict[str, int]:
    counts = {}
    for name, result in published.items():
        counts[f"upserted_{name}"] = result.upserted
        counts[f"retracted_{name}"] = result.retracted
    counts["fact_rows_written"] = sum(r.written for r in published.values())
    return counts


def _message(counts: dict[str, Any], rejected: int, written: int | None) -> str:
    read = (
        f"events {counts['events_rows']}, inventory {counts['inventory_rows']}, "
        f"sales {counts['sales_rows_in_window']} rows ({counts['window']}); {rejected} rejected"
    )
    if written is None:
        return f"dry run: {read}; nothing written"
    return f"{read}; {written} fact rows written" + (" (sheet unchanged)" if written == 0 else "")
