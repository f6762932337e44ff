"""What of a QTickets record may leave the client: whitelisted fields only, never the buyer.

Orders carry PII everywhere (`client.*`, baskets' `client_*`, `payment_card_number`, free-text
`custom`, `fields` and comments; shared/upstream-apis.md §1.7). The client passes every record
through these functions before yielding it, whatever the server sent (it may ignore `select`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from zakaz_common.redact import scrub
from zakaz_common.utm import parse_utm

_ORDER_KEYS: Final = ("id", "payed", "payed_at", "deleted_at", "updated_at", "event_id")
_BASKET_KEYS: Final = ("id", "show_id", "price", "quantity", "deleted_at", "refunded_at")
_EVENT_KEYS: Final = ("id", "name", "is_active", "deleted_at")
_SHOW_KEYS: Final = ("id", "start_date", "is_active", "deleted_at")
_UTM_KEYS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
_EMAIL: Final = re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}")
#: Text that cannot hold PII, so needs no scrubbing: short digit strings (ids, counts: a phone
#: or card takes ten digits or more) and ISO dates and times (no run of more than four digits,
#: no letters but T and Z, no `@`). Most of an order's strings are of these kinds.
_PLAIN: Final = re.compile(
    r"[0-9]{1,9}|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
    re.ASCII,
)
#: Longest text kept from a field (ids, timestamps, names of events and tags are far shorter).
_TEXT_MAX: Final = 200


def safe_order(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An order with only the fields a sale needs; buyer, holders, cards and free text dropped."""
    order: dict[str, Any] = {k: safe_value(raw[k]) for k in _ORDER_KEYS if k in raw}
    utm = raw.get("utm")
    # `[]` is PHP's empty map; any other list or scalar is the wrong shape, for transform to reject.
    order["utm"] = (
        safe_utm(utm) if utm is None or utm == [] or isinstance(utm, str | dict) else _kind(utm)
    )
    baskets = raw.get("baskets")
    if isinstance(baskets, list):
        order["baskets"] = [
            {k: safe_value(b[k]) for k in _BASKET_KEYS if k in b}
            if isinstance(b, dict)
            else _kind(b)
            for b in baskets
        ]
    elif baskets is None or baskets == "":
        # An object (even `{}`) is not a list of baskets: transform rejects it, never skips it.
        order["baskets"] = []
    else:
        order["baskets"] = _kind(baskets)
    return order


def safe_event(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An event with its name, city and shows; nothing else."""
    event: dict[str, Any] = {k: safe_value(raw[k]) for k in _EVENT_KEYS if k in raw}
    city = raw.get("city")
    event["city"] = safe_value(city.get("name")) if isinstance(city, dict) else safe_value(city)
    shows = raw.get("shows")
    if isinstance(shows, list):
        event["shows"] = [
            {k: safe_value(s[k]) for k in _SHOW_KEYS if k in s} if isinstance(s, dict) else _kind(s)
            for s in shows
        ]
    else:
        event["shows"] = [] if shows in (None, "", {}) else _kind(shows)
    return event


def safe_utm(raw: Any) -> dict[str, str]:
    """The five UTM tags of an order: `[]`, `""` and null mean none; e-mail-like values dropped."""
    if isinstance(raw, str):
        parsed = parse_utm(raw)
        found = {
            "utm_source": parsed.source,
            "utm_medium": parsed.medium,
            "utm_campaign": parsed.campaign,
            "utm_content": parsed.content,
            "utm_term": parsed.term,
        }
    elif isinstance(raw, dict):
        found = {k: "" if raw.get(k) is None else str(raw.get(k)) for k in _UTM_KEYS}
    else:
        found = {}
    tags = {}
    for key in _UTM_KEYS:
        value = " ".join(found.get(key, "").split())[:_TEXT_MAX]
        # A tag is a campaign label; one holding an e-mail is a buyer's address pasted by a tool.
        tags[key] = "" if _EMAIL.search(value) else value
    return tags


def safe_value(value: Any) -> Any:
    """JSON scalars pass (strings scrubbed and cut); nested values become their kind."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if _PLAIN.fullmatch(value):
            return value
        if value.isascii() and value.isdigit():
            # Ten digits or more may be a phone without its +7 or a card: never kept from orders.
            return "<number>"
        return scrub(value[:_TEXT_MAX])
    return _kind(value)


def _kind(value: Any) -> str:
    return f"<{type(value).__name__}>"
