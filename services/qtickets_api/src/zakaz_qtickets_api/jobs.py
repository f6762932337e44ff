"""The `qtickets_api` load: events, paid orders of a trailing window and seat inventory.

Everything is read from the API before anything is written, so an upstream failure changes
nothing in the warehouse. Then each fact is staged and published with the scope this load speaks
for: all of this source's events; its sales (and sales by UTM) inside the window, so a refund or a
cancellation upstream retracts the key; its inventory except events whose seats failed to load,
which keep their previous numbers. Some seat maps failing is a success with a `partial` warning
naming the shows; every seat map failing fails the run (nothing written), as an outage would.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import AuthError, BadInput, ConfigError, UpstreamError
from zakaz_common.facts import EVENTS, INVENTORY, SALES, live_events
from zakaz_common.load import Reject, Scope
from zakaz_common.pagemarks import PageHistory, last_marks
from zakaz_common.parts import PartTally
from zakaz_common.runs import LoadOutcome, RunContext
from zakaz_common.timeutil import MSK

from zakaz_qtickets_api.client import QticketsClient
from zakaz_qtickets_api.facts import SALES_UTM
from zakaz_qtickets_api.orders import STREAM, OrderStream, Staging
from zakaz_qtickets_api.settings import get_settings
from zakaz_qtickets_api.transform import (
    SOURCE,
    EventInfo,
    event_row,
    inventory_row,
    read_event,
    show_inventory,
)

log = logging.getLogger(__name__)


@dataclass
class Harvest:
    """What one run read and transformed, before anything is written."""

    since: date
    to: date
    events: dict[str, EventInfo] = field(default_factory=dict)
    inventory: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: Events whose inventory is kept as it was because a show's seats failed to load.
    kept_events: list[str] = field(default_factory=list)
    failed_shows: list[str] = field(default_factory=list)
    seat_maps: PartTally = field(default_factory=lambda: PartTally("seat maps of shows"))
    counts: Counter[str] = field(default_factory=Counter)


def load(ctx: RunContext) -> LoadOutcome:
    """One load of `qtickets_api` (what `zakaz run`, the RQ job and backfill call)."""
    settings = get_settings()
    window = ctx.request.window(ctx.today, settings.days_back)
    if window is None:  # cannot happen: QTICKETS_DAYS_BACK always gives a default window
        raise ConfigError("qtickets_api needs a date window: give --days or --since/--to")
    harvest = Harvest(*window)
    dry = ctx.request.dry_run
    marks_scope = f"{harvest.since}..{harvest.to}"
    history = PageHistory() if dry else last_marks(ctx.wh, SOURCE, STREAM, marks_scope)
    paid_from = datetime.combine(harvest.since, time(0), MSK)
    paid_before = datetime.combine(harvest.to + timedelta(days=1), time(0), MSK)
    with QticketsClient.from_settings(settings, ctx.deadline) as client:
        _read_events(client, harvest)
        _keep_rejected_events(ctx, harvest)
        stream = OrderStream(
            harvest.since,
            harvest.to,
            harvest.events,
            None if dry else Staging(ctx.wh, ctx.run_id, ctx.loaded_at),
            history,
            refetch=partial(client.order_page, paid_from, paid_before),
        )
        try:
            # Full pages go to the engine as bytes, unless nothing may be staged (a dry run).
            for page in client.order_pages(
                paid_from, paid_before, stream.history, raw=stream.staging is not None
            ):
                stream.feed(page)
            # Sales rows were staged as their pages arrived; nothing is published before every
            # read succeeded, so an upstream failure still changes nothing the views show.
            stream.finish()
        finally:
            stream.close()
        _read_inventory(client, harvest, datetime.fromtimestamp(ctx.loaded_at, MSK))
        harvest.counts.update({f"http_{k}": v for k, v in client.stats.items()})
    # Before anything is published: with no seat map read, the inventory would silently go stale.
    failed_parts = harvest.seat_maps.settle()
    harvest.rejects.extend(stream.rejects)
    event_rows = [event_row(e) for e in harvest.events.values()]
    counts = _counts(harvest, stream)
    outcome = LoadOutcome(
        rows_processed=len(event_rows) + counts["sales_rows"] + len(harvest.inventory),
        rows_rejected=len(harvest.rejects),
        counts=counts,
        failed_parts=failed_parts,
    )
    if dry:
        outcome.message = "dry run, nothing written: " + _summary(counts, harvest)
        return outcome
    api = {"source": [SOURCE]}
    kept = {"event_id": harvest.kept_events} if harvest.kept_events else {}
    ctx.stage(EVENTS, event_rows)
    ctx.stage(INVENTORY, harvest.inventory)
    # Before publishing, so that the keys of rejected rows are held back rather than retracted.
    ctx.reject(harvest.rejects)
    results = {"events": ctx.publish(EVENTS, Scope(equals=api))}
    ctx.lease.ensure_held()
    sales = stream.publish(Scope(equals=api, since=harvest.since, to=harvest.to), ctx.held)
    for spec in (SALES, SALES_UTM):
        ctx.published(spec, sales[spec.fact])
    results["sales"], results["sales_utm"] = sales[SALES.fact], sales[SALES_UTM.fact]
    results["inventory"] = ctx.publish(INVENTORY, Scope(equals=api, excluded=kept))
    for name, result in results.items():
        counts[f"{name}_upserted"], counts[f"{name}_retracted"] = result.upserted, result.retracted
    stream.record_marks(marks_scope)
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


def _keep_rejected_events(ctx: RunContext, harvest: Harvest) -> None:
    """Events whose record was rejected keep their last good name and city for their sales.

    Their `dim_events_src` and inventory rows are held back by the reject; without this their
    sales would be staged with no name and no city until the event reads cleanly again.
    """
    rejected = sorted(
        {
            str(r.key["event_id"])
            for r in harvest.rejects
            if EVENTS.fact in r.facts and r.key and r.key.get("event_id")
        }
        - set(harvest.events)
    )
    if not rejected:
        return
    found = live_events(ctx.wh, SOURCE, rejected)
    for event_id, (name, event_date, city) in found.items():
        # No shows: the event's inventory is not read again and stays held at its last value.
        harvest.events[event_id] = EventInfo(event_id, name, event_date, city, show_ids=())
    harvest.counts["events_kept_from_last_run"] = len(found)


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
                harvest.seat_maps.failure(show_id, exc)
                failed = True
                log.warning(
                    "seats of show %s failed, event %s keeps its previous inventory: %s",
                    show_id,
                    event.event_id,
                    exc,
                )
                continue
            harvest.counts["shows_with_inventory"] += 1
            harvest.seat_maps.loaded()
            total, left = total + show_total, left + show_left
        if failed:
            harvest.kept_events.append(event.event_id)
        else:
            harvest.inventory.append(inventory_row(event, total, left, observed_at))


def _counts(harvest: Harvest, stream: OrderStream) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "window_since": harvest.since.isoformat(),
        "window_to": harvest.to.isoformat(),
        "events": len(harvest.events),
        "orders": 0,
        "orders_rejected": 0,
        "sales_rows": 0,
        "tickets_sold": 0,
        "shows": 0,
        "shows_with_inventory": 0,
        "shows_failed": len(harvest.failed_shows),
        "failed_show_ids": list(harvest.failed_shows),
        "inventory_events": len(harvest.inventory),
        "pages_unchanged": stream.carried_pages,
        "pages_read_by_engine": stream.engine_pages,
        # The run whose publish of sales still stands, when nothing changed since it.
        "sales_unchanged_since": stream.history.run_id if stream.unchanged else "",
    }
    counts.update(harvest.counts)
    counts.update((k, v) for k, v in stream.counts.items() if k != "revenue_kopecks")
    counts["sales_keys"] = stream.sales_keys()
    counts["revenue"] = str(stream.revenue)
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
