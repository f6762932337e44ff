"""Pure: QTickets records (PII already dropped by the client) → fact rows, or rejects with reasons.

CONTRACT §5: a sale is a basket of a paid order (`payed` true, `deleted_at` null) whose basket is
neither deleted nor refunded; `sale_date` is the Moscow date of `payed_at`; tickets are the sum of
`quantity`, revenue the sum of basket `price`. Inventory counts seats that are not `disabled`,
and the free ones only where the seat is `available`. No I/O and no clock here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.facts import EVENTS, INVENTORY, SALES
from zakaz_common.fields import (
    CITY_MAX,
    DATE_TEXT_MAX,
    EVENT_NAME_MAX,
    ID_MAX,
    INT64,
    UTM_MAX,
    check_money_total,
    check_total,
    read_digits,
    read_int,
    read_money,
    read_text,
    readable,
)
from zakaz_common.load import Reject
from zakaz_common.normalize import clean_text, preview
from zakaz_common.timeutil import parse_datetime

from zakaz_qtickets_api.facts import SALES_UTM, UTM_COLUMNS

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
        for show in shows:
            if not isinstance(show, Mapping):
                raise BadValue(f"a show is {preview(show)}, not an object")
        live = [s for s in shows if is_absent(s.get("deleted_at"))]
        show_ids = tuple(read_id(s.get("id"), "show id") for s in live)
        starts = [
            read_stamp(s["start_date"], "start_date").date()
            for s in live
            if not is_absent(s.get("start_date"))
        ]
        name = read_text(raw.get("name"), "name", EVENT_NAME_MAX)
        city = read_text(raw.get("city"), "city", CITY_MAX)
    except BadValue as exc:
        key = readable({"source": lambda: SOURCE, "event_id": lambda: read_id(raw.get("id"), "id")})
        return Reject(
            "events",
            dict(raw),
            f"event {preview(raw.get('id'))}: {exc}",
            key=key,
            facts=(EVENTS.fact, INVENTORY.fact),
        )
    return EventInfo(
        event_id=event_id,
        name=name,
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
        sale_date = _sale_date(raw)
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
            # Sales count tickets sold and money taken: neither is ever negative.
            quantity = read_int(basket.get("quantity"), "quantity", INT64)
            price = read_money(basket.get("price"), "price")
            tickets, revenue, live = tickets + quantity, revenue + price, live + 1
        check_total(tickets, "tickets_sold")
        check_money_total(revenue, "revenue")
        found = raw.get("utm")
        if found is not None and not isinstance(found, Mapping):
            raise BadValue(f"utm is {preview(found)}, not an object")
        utm: Mapping[str, Any] = found or {}
        tags = tuple(_tag(utm.get(column), column) for column in UTM_COLUMNS)
    except BadValue as exc:
        return Reject(
            "orders",
            dict(raw),
            f"order {preview(raw.get('id'))}: {exc}",
            # With its UTM tags read too, the key is whole in the sales-by-UTM fact: that
            # row is kept as it was, not summed again without this order.
            key=readable(
                {
                    "source": lambda: SOURCE,
                    "sale_date": lambda: _sale_date(raw),
                    "event_id": lambda: read_id(raw.get("event_id"), "event_id"),
                    **{column: _utm_reader(raw, column) for column in UTM_COLUMNS},
                }
            ),
            facts=(SALES.fact, SALES_UTM.fact),
        )
    if live == 0:
        return Skip("refunded")
    return Sale(
        order_id=clean_text(raw.get("id")),
        sale_date=sale_date,
        event_id=event_id,
        tickets_sold=tickets,
        revenue=revenue,
        utm=(tags[0], tags[1], tags[2], tags[3], tags[4]),
    )


def _sale_date(raw: Mapping[str, Any]) -> date:
    if is_absent(raw.get("payed_at")):
        raise BadValue("paid order without payed_at")
    return read_stamp(raw["payed_at"], "payed_at").date()


def _utm_reader(raw: Mapping[str, Any], column: str) -> Callable[[], str]:
    """Reads one UTM tag of a rejected order, as a sale would have it (BadValue if it cannot)."""

    def read() -> str:
        found = raw.get("utm")
        if found is not None and not isinstance(found, Mapping):
            raise BadValue(f"utm is {preview(found)}, not an object")
        return _tag((found or {}).get(column), column)

    return read


def _tag(value: Any, column: str) -> str:
    # JSON scalars are tags as printed (`true` reads `True`, as it always has); objects are not.
    text = str(value) if isinstance(value, bool) else value
    return read_text(text, column, UTM_MAX)


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
        if not isinstance(seat, Mapping):
            raise BadValue(f"a seat is {preview(seat)}, not an object")
        if "max_quantity" not in seat or "available" not in seat:
            raise BadValue(
                f"seat {preview(seat.get('id'))} has no max_quantity/available counters "
                "(the answer ignored select/flat)"
            )
        if read_flag(seat.get("disabled"), "disabled"):
            continue
        total += read_int(seat["max_quantity"], "max_quantity", INT64)
        if read_flag(seat["available"], "available"):
            left += read_int(seat.get("free_quantity"), "free_quantity", INT64)
    return check_total(total, "tickets_total"), check_total(left, "tickets_left")


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
    """An id sent as an int or a string of ASCII digits, as text without leading zeros."""
    if value is None or value == "":
        raise BadValue(f"no {what}")
    try:
        return str(int(read_digits(value, what, limit=ID_MAX)))
    except BadValue:
        raise BadValue(f"{what} {preview(value)} is not an id") from None


def read_stamp(value: Any, what: str) -> datetime:
    """A timestamp as `timeutil.parse_datetime` reads it (Moscow), its refusals named."""
    if isinstance(value, str) and len(value) > DATE_TEXT_MAX:
        raise BadValue(f"{what}: too long for a date ({len(value)} characters)")
    try:
        return parse_datetime(value)
    except BadValue as exc:
        raise BadValue(f"{what}: {exc}") from exc


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
