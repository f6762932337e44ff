"""The `qtickets_api` load: events, paid orders of a trailing window and seat inventory.

Everything is read from the API before anything is written, so an upstream failure changes
nothing in the warehouse. Then each fact is staged and published with the scope this load speaks
for: all of this source's events; its sales (and sales by UTM) inside the window, so a refund or a
cancellation upstream retracts the key; its inventory except events whose seats failed to load,
which keep their previous numbers.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import AuthError, BadInput, ConfigError, UpstreamError
from zakaz_common.facts import EVENTS, INVENTORY, SALES
from zakaz_common.load import Reject, Scope
from zakaz_common.runs import LoadOutcome, RunContext
from zakaz_common.timeutil import MSK

from zakaz_qtickets_api.client import QticketsClient
from zakaz_qtickets_api.facts import SALES_UTM
from zakaz_qtickets_api.settings import get_settings
from zakaz_qtickets_api.transform import (
    SOURCE,
    EventInfo,
    Sale,
    Skip,
    event_row,
    inventory_row,
    read_event,
    read_order,
    sales_row,
    show_inventory,
    utm_row,
)

log = logging.getLogger(__name__)


@dataclass
class Harvest:
    """What one run read and transformed, before anything is written."""

    since: date
    to: date
    events: dict[str, EventInfo] = field(default_factory=dict)
    sales: list[Sale] = field(default_factory=list)
    inventory: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: Events whose inventory is kept as it was because a show's seats failed to load.
    kept_events: list[str] = field(default_factory=list)
    failed_shows: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def load(ctx: RunContext) -> LoadOutcome:
    """One load of `qtickets_api` (what `zakaz run`, the RQ job and backfill call)."""
    settings = get_settings()
    window = ctx.request.window(ctx.today, settings.days_back)
    if window is None:  # cannot happen: QTICKETS_DAYS_BACK always gives a default window
        raise ConfigError("qtickets_api needs a date window: give --days or --since/--to")
    harvest = Harvest(*window)
    with QticketsClient.from_settings(settings) as client:
        _read_events(client, harvest)
        _read_orders(client, harvest)
        _read_inventory(client, harvest, datetime.fromtimestamp(ctx.loaded_at, MSK))
        harvest.counts.update({f"http_{k}": v for k, v in client.stats.items()})
    event_rows = [event_row(e) for e in harvest.events.values()]
    sales_rows = [sales_row(s, harvest.events.get(s.event_id)) for s in harvest.sales]
    counts = _counts(harvest, len(sales_rows))
    outcome = LoadOutcome(
        rows_processed=len(event_rows) + len(sales_rows) + len(harvest.inventory),
        rows_rejected=len(harvest.rejects),
        counts=counts,
    )
    if ctx.request.dry_run:
        outcome.message = "dry run, nothing written: " + _summary(counts, harvest)
        return outcome
    api = {"source": [SOURCE]}
    dated = Scope(equals=api, since=harvest.since, to=harvest.to)
    kept = {"event_id": harvest.kept_events} if harvest.kept_events else {}
    published = {
        "events": (EVENTS, event_rows, Scope(equals=api)),
        "sales": (SALES, sales_rows, dated),
        "sales_utm": (SALES_UTM, [utm_row(s) for s in harvest.sales], dated),
        "inventory": (
            INVENTORY,
            harvest.inventory,
            Scope(equals=api, excluded=kept),
        ),
    }
    for name, (spec, rows, scope) in published.items():
        ctx.stage(spec, rows)
        result = ctx.publish(spec, scope)
        counts[f"{name}_upserted"], counts[f"{name}_retracted"] = result.upserted, result.retracted
    ctx.reject(harvest.rejects)
    outcome.message = _summary(counts, harvest)
    ctx.log.info("qtickets_api: %s", outcome.message)
    return outcome


def _read_events(client: QticketsClient, harvest: Harvest) -> None:
    cities = CityDirectory.bundled()
    for raw in client.events():
        harvest.counts["events_read"] += 1
        found = read_event(raw, cities)
        if isinstance(found, Reject):
            harvest.rejects.append(found)
            harvest.counts["events_rejected"] += 1
        else:
            harvest.events[found.event_id] = found


def _read_orders(client: QticketsClient, harvest: Harvest) -> None:
    paid_from = datetime.combine(harvest.since, time(0), MSK)
    paid_before = datetime.combine(harvest.to + timedelta(days=1), time(0), MSK)
    for raw in client.orders(paid_from, paid_before):
        harvest.counts["orders"] += 1
        found = read_order(raw)
        if isinstance(found, Reject):
            harvest.rejects.append(found)
            harvest.counts["orders_rejected"] += 1
        elif isinstance(found, Skip):
            harvest.counts[f"orders_{found.reason}"] += 1
        elif not harvest.since <= found.sale_date <= harvest.to:
            # The server's filter is undocumented for orders: re-checked here.
            harvest.counts["orders_outside_window"] += 1
        else:
            harvest.sales.append(found)


def _read_inventory(client: QticketsClient, harvest: Harvest, observed_at: datetime) -> None:
    for event in harvest.events.values():
        if event.deleted or not event.show_ids:
            continue
        total = left = 0
        failed = False
        for show_id in event.show_ids:
            harvest.counts["shows"] += 1
            try:
                show_total, show_left = show_inventory(client.seats(show_id))
            except AuthError:
                raise
            except (UpstreamError, BadInput) as exc:
                # One show's seat map failing must not fail the run nor zero the event.
                harvest.failed_shows.append(show_id)
                failed = True
                log.warning(
                    "seats of show %s failed, event %s keeps its previous inventory: %s",
                    show_id,
                    event.event_id,
                    exc,
                )
                continue
            harvest.counts["shows_with_inventory"] += 1
            total, left = total + show_total, left + show_left
        if failed:
            harvest.kept_events.append(event.event_id)
        else:
            harvest.inventory.append(inventory_row(event, total, left, observed_at))


def _counts(harvest: Harvest, sales_rows: int) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "window_since": harvest.since.isoformat(),
        "window_to": harvest.to.isoformat(),
        "events": len(harvest.events),
        "orders": 0,
        "orders_rejected": 0,
        "sales_rows": sales_rows,
        "sales_keys": len({(s.sale_date, s.event_id) for s in harvest.sales}),
        "tickets_sold": sum(s.tickets_sold for s in harvest.sales),
        "revenue": str(sum((s.revenue for s in harvest.sales), Decimal("0.00"))),
        "shows": 0,
        "shows_with_inventory": 0,
        "shows_failed": len(harvest.failed_shows),
        "failed_show_ids": list(harvest.failed_shows),
        "inventory_events": len(harvest.inventory),
    }
    counts.update(harvest.counts)
    return counts


def _summary(counts: dict[str, Any], harvest: Harvest) -> str:
    parts = [
        f"{counts['events']} events",
        f"{counts['orders']} orders paid {harvest.since}..{harvest.to}",
        f"{counts['sales_rows']} sales rows ({counts['tickets_sold']} tickets, "
        f"{counts['revenue']} ₽)",
        f"{counts['shows_with_inventory']} shows with inventory",
    ]
    if harvest.failed_shows:
        parts.append(f"{len(harvest.failed_shows)} shows failed (previous inventory kept)")
    if harvest.rejects:
        parts.append(f"{len(harvest.rejects)} rows rejected")
    return ", ".join(parts)
