"""Pure: QTickets records (PII already dropped by the client) → fact rows, or rejects with reasons.

CONTRACT §5: a sale is a basket of a paid order (`payed` true, `deleted_at` null) whose basket is
neither deleted nor refunded; `sale_date` is the Moscow date of `payed_at`; tickets are the sum of
`quantity`, revenue the sum of basket `price`. Inventory counts seats that are not `disabled`,
and the free ones only where the seat is `available`. No I/O and no clock here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.load import Reject
from zakaz_common.normalize import clean_text, parse_decimal, parse_int, preview
from zakaz_common.timeutil import parse_datetime

from zakaz_qtickets_api.facts import UTM_COLUMNS

#: The contract's name of this source, in every row's `source`.
SOURCE: Final = "qtickets_api"

#: What MySQL writes for "no date"; the API passes it through as a string.
_ZERO_DATES: Final = frozenset({"0000-00-00", "0000-00-00 00:00:00"})
_TRUE: Final = frozenset({"1", "true"})
_FALSE: Final = frozenset({"0", "false", ""})


@dataclass(frozen=True)
class EventInfo:
    """An event as this source knows it: name, first show's Moscow date, canonical city, shows."""

    event_id: str
    name: str
    event_date: date | None
    city: str
    #: Shows that are not deleted (their seats make the event's inventory).
    show_ids: tuple[str, ...]
    deleted: bool = False


@dataclass(frozen=True)
class Sale:
    """The paid, unrefunded part of one order."""

    order_id: str
    sale_date: date
    event_id: str
    tickets_sold: int
    revenue: Decimal
    utm: tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Skip:
    """An order that is not a sale, and why (`unpaid`, `cancelled`, `refunded`)."""

    reason: str


def read_event(raw: Mapping[str, Any], cities: CityDirectory) -> EventInfo | Reject:
    """An event, or a Reject naming what could not be read."""
    try:
        event_id = read_id(raw.get("id"), "id")
        shows = raw.get("shows", [])
        if not isinstance(shows, list):
            raise BadValue(f"shows is {preview(shows)}, not a list")
        live = [s for s in shows if isinstance(s, Mapping) and is_absent(s.get("deleted_at"))]
        show_ids = tuple(read_id(s.get("id"), "show id") for s in live)
        starts = [
            parse_datetime(s["start_date"]).date()
            for s in live
            if not is_absent(s.get("start_date"))
        ]
    except BadValue as exc:
        return Reject("events", dict(raw), f"event {preview(raw.get('id'))}: {exc}")
    city = clean_text(raw.get("city"))
    return EventInfo(
        event_id=event_id,
        name=clean_text(raw.get("name")),
        event_date=min(starts, default=None),
        city=cities.canonical(city) if city else "",
        show_ids=show_ids,
        deleted=not is_absent(raw.get("deleted_at")),
    )


def event_row(event: EventInfo) -> dict[str, Any]:
    """The `dim_events_src` row of an event."""
    return {
        "source": SOURCE,
        "event_id": event.event_id,
        "event_name": event.name,
        "event_date": event.event_date,
        "city": event.city,
    }


def read_order(raw: Mapping[str, Any]) -> Sale | Skip | Reject:
    """The sale in an order, a Skip when it holds none, or a Reject when it cannot be read."""
    try:
        if not read_flag(raw.get("payed"), "payed"):
            return Skip("unpaid")
        if not is_absent(raw.get("deleted_at")):
            return Skip("cancelled")
        if is_absent(raw.get("payed_at")):
            raise BadValue("paid order without payed_at")
        sale_date = parse_datetime(raw["payed_at"]).date()
        event_id = read_id(raw.get("event_id"), "event_id")
        baskets = raw.get("baskets")
        if not isinstance(baskets, list):
            raise BadValue(f"baskets is {preview(baskets)}, not a list")
        tickets, revenue, live = 0, Decimal("0.00"), 0
        for basket in baskets:
            if not isinstance(basket, Mapping):
                raise BadValue(f"a basket is {preview(basket)}, not an object")
            if not is_absent(basket.get("deleted_at")) or not is_absent(basket.get("refunded_at")):
                continue
            quantity, price = parse_int(basket.get("quantity")), parse_decimal(basket.get("price"))
            if quantity < 0 or price < 0:
                raise BadValue(
                    f"basket {preview(basket.get('id'))} has a negative quantity or price"
                )
            tickets, revenue, live = tickets + quantity, revenue + price, live + 1
    except BadValue as exc:
        return Reject("orders", dict(raw), f"order {preview(raw.get('id'))}: {exc}")
    if live == 0:
        return Skip("refunded")
    found = raw.get("utm")
    utm: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    tags = tuple(clean_text(utm.get(column, "")) for column in UTM_COLUMNS)
    return Sale(
        order_id=clean_text(raw.get("id")),
        sale_date=sale_date,
        event_id=event_id,
        tickets_sold=tickets,
        revenue=revenue,
        utm=(tags[0], tags[1], tags[2], tags[3], tags[4]),
    )


def sales_row(sale: Sale, event: EventInfo | None) -> dict[str, Any]:
    """The `fact_qtickets_sales_daily` row of a sale (rows of one key add up when published)."""
    return {
        "source": SOURCE,
        "sale_date": sale.sale_date,
        "event_id": sale.event_id,
        "event_name": event.name if event else "",
        "city": event.city if event else "",
        "tickets_sold": sale.tickets_sold,
        "revenue": sale.revenue,
    }


def utm_row(sale: Sale) -> dict[str, Any]:
    """The `fact_qtickets_sales_utm_daily` row of a sale."""
    row: dict[str, Any] = {
        "source": SOURCE,
        "sale_date": sale.sale_date,
        "event_id": sale.event_id,
        "tickets_sold": sale.tickets_sold,
        "revenue": sale.revenue,
    }
    row.update(zip(UTM_COLUMNS, sale.utm, strict=True))
    return row


def show_inventory(seats: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """`(tickets_total, tickets_left)` of one show's seats; BadValue when counters are missing."""
    total = left = 0
    for seat in seats:
        if "max_quantity" not in seat or "available" not in seat:
            raise BadValue(
                f"seat {preview(seat.get('id'))} has no max_quantity/available counters "
                "(the answer ignored select/flat)"
            )
        if read_flag(seat.get("disabled"), "disabled"):
            continue
        total += parse_int(seat["max_quantity"])
        if read_flag(seat["available"], "available"):
            left += parse_int(seat.get("free_quantity"))
    return total, left


def inventory_row(
    event: EventInfo, tickets_total: int, tickets_left: int, observed_at: datetime
) -> dict[str, Any]:
    """The `fact_qtickets_inventory_latest` row of an event, observed at `observed_at`."""
    return {
        "source": SOURCE,
        "event_id": event.event_id,
        "event_name": event.name,
        "event_date": event.event_date,
        "city": event.city,
        "tickets_total": tickets_total,
        "tickets_left": tickets_left,
        "updated_at": observed_at,
    }


def read_id(value: Any, what: str) -> str:
    """An id sent as an int or a string of digits, as text."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value.strip()))
    if value is None or value == "":
        raise BadValue(f"no {what}")
    raise BadValue(f"{what} {preview(value)} is not an id")


def read_flag(value: Any, what: str) -> bool:
    """A PHP boolean: true/false, 1/0, "1"/"0"; null is false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BadValue(f"{what} {preview(value)} is not a boolean")


def is_absent(value: Any) -> bool:
    """Whether a timestamp field means "never": null, empty or MySQL's zero date."""
    return value is None or (isinstance(value, str) and value.strip() in _ZERO_DATES | {""})
