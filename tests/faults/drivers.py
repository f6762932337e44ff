"""How to break each source's upstream through the sandbox's controls, and how to mend it.

A bad-row fault changes one good key upstream (so the run has real work to publish) and spoils
one row of another key; `Spoil.fix` puts the spoiled row back as it was, so a clean run after it
shows what the views must look like: the good change in, the spoiled key at its old value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
from fault_support import Stand
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN

SOURCES: Final = ("qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail")

#: A count out of any range (UInt64 ends near 1.8e19).
HUGE_COUNT: Final = 10**20
#: A name no person typed: NUL, bell and an ANSI escape around real words.
CONTROL_NAME: Final = "Стендап\x00\x07\x1b[2J Большой концерт"

#: How each field may be spelled in a reject's reason (column, header or upstream name).
TICKETS: Final = ("tickets", "quantity", "билет")
MONEY: Final = ("revenue", "price", "выручка")
SPEND: Final = ("spend", "spent", "cost")
IMPRESSIONS: Final = ("impressions", "shows")
NAME: Final = ("event_name", "name", "название")
BASKETS: Final = ("baskets",)
ROWS: Final = ("rows",)
CELLS: Final = ("cells", "columns", "fields")

_MSK: Final = ZoneInfo("Europe/Moscow")


@dataclass
class Spoil:
    """A spoiled row: the names its reject's reason may use for the field, and the mend."""

    fields: tuple[str, ...]
    fix: Callable[[], None]


#: Bad-row faults each sandbox can produce, by source.
BAD_ROWS: Final = {
    "qtickets_sheets": (
        "tickets 10^20",
        "revenue 1e300",
        "negative revenue",
        "control characters in a name",
    ),
    "qtickets_api": (
        "tickets 10^20",
        "revenue 1e300",
        "negative revenue",
        "control characters in a name",
        "baskets an object, not a list",
    ),
    "vk_ads": (
        "spend x1e17",
        "impressions 10^20",
        "control characters in a name",
        "statistics rows an object, not a list",
    ),
    "direct": (
        "spend x1e17",
        "impressions 10^20",
        "control characters in a name",
        "report line cut short",
    ),
    "gmail": ("tickets 10^20", "negative revenue", "control characters in a name"),
}


#: Faults of the issue's list a source is not run against here, and why.
NOT_PRODUCED: Final = {
    ("qtickets_sheets", "malformed structure"): (
        "Sheets `values` is always a list of rows of cells: no object can stand where a list "
        "belongs (rows of the wrong length are ragged rows, read by the source's own tests)"
    ),
    ("gmail", "malformed structure"): (
        "a report is parsed from HTML or CSV text, which has no objects or lists; its "
        "structural fault is the unreadable attachment, run as its own case"
    ),
    ("gmail", "revenue 1e300"): (
        "the same parse and bound as the negative revenue case; left out to keep the suite "
        "near two minutes"
    ),
    ("vk_ads", "negative money"): (
        "VK and Direct report spend, never negative; the issue asks for negative money in "
        "sales rows (qtickets_sheets, qtickets_api, gmail)"
    ),
    ("direct", "negative money"): (
        "as for vk_ads; the Direct sandbox refuses a negative cost, as Direct cannot report one"
    ),
}


def spoil(stand: Stand, source: str, fault: str) -> Spoil:
    """Change one good key upstream and spoil one row of another key as `fault` says."""
    return {
        "qtickets_sheets": _sheets,
        "qtickets_api": _qtickets,
        "vk_ads": _vk,
        "direct": _direct,
        "gmail": _gmail,
    }[source](stand, fault)


# -- qtickets_sheets ---------------------------------------------------------------------------


def _sheets(stand: Stand, fault: str) -> Spoil:
    truth = stand.get("sheets/truth")
    last_day = max(s["sale_date"] for s in truth["sales"])
    single = [s for s in truth["sales"] if len(s["rows"]) == 1 and s["sale_date"] != last_day]
    good, bad = single[0], next(s for s in single[1:] if s["event_id"] != single[0]["event_id"])

    def cell(tab: str, ref: str, value: Any, kind: str | None = None) -> None:
        stand.control("sheets/cells", {"tab": tab, "cell": ref, "value": value, "kind": kind})

    # A clerk corrects one sale: one more ticket, 100 ₽ more.
    row = good["rows"][0]
    cell("Sales", f"D{row}", good["tickets_sold"] + 1, "grouped")
    cell("Sales", f"E{row}", float(Decimal(good["revenue"]) + 100), "money")
    bad_row = bad["rows"][0]
    if fault == "tickets 10^20":
        cell("Sales", f"D{bad_row}", HUGE_COUNT, "grouped")
        return Spoil(TICKETS, lambda: cell("Sales", f"D{bad_row}", bad["tickets_sold"], "grouped"))
    if fault == "revenue 1e300":
        cell("Sales", f"E{bad_row}", 1e300, "money")
        return Spoil(
            MONEY, lambda: cell("Sales", f"E{bad_row}", float(Decimal(bad["revenue"])), "money")
        )
    if fault == "negative revenue":
        cell("Sales", f"E{bad_row}", -float(Decimal(bad["revenue"])), "money")
        return Spoil(
            MONEY, lambda: cell("Sales", f"E{bad_row}", float(Decimal(bad["revenue"])), "money")
        )
    assert fault == "control characters in a name", fault
    events = truth["events"]
    # Events rows follow the header in season order; the first one is row 2.
    cell("Events", "B2", CONTROL_NAME)
    return Spoil(NAME, lambda: cell("Events", "B2", events[0]["event_name"]))


# -- qtickets_api ------------------------------------------------------------------------------


def _orders(stand: Stand) -> list[dict[str, Any]]:
    response = stand.http.request(
        "GET",
        stand.settings["qtickets_api"]["QTICKETS_BASE_URL"] + "/orders",
        json={"perPage": 1000},
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    )
    response.raise_for_status()
    return list(response.json()["data"])


def _sale_key(order: dict[str, Any]) -> tuple[date, str]:
    paid = datetime.fromisoformat(order["payed_at"]).astimezone(_MSK).date()
    return paid, str(order["event_id"])


def _qtickets(stand: Stand, fault: str) -> Spoil:
    since = datetime.now(_MSK).date() - timedelta(days=20)
    clean = [
        o
        for o in _orders(stand)
        if o["payed"] is True
        and o["deleted_at"] is None
        and o["event_id"] is not None
        and o["payed_at"]
        and _sale_key(o)[0] >= since
        and o["baskets"]
        and all(b["refunded_at"] is None and b["deleted_at"] is None for b in o["baskets"])
    ]
    good = clean[0]
    bad = next(
        o
        for o in clean[1:]
        if _sale_key(o) != _sale_key(good) and o["event_id"] != good["event_id"]
    )
    stand.control(f"qtickets/orders/{good['id']}/refund")
    oid = bad["id"]

    def edit(kind: str, item: int, changes: dict[str, Any]) -> None:
        stand.control(f"qtickets/{kind}/{item}/edit", {"set": changes})

    basket = bad["baskets"][0]
    if fault == "tickets 10^20":
        edit("orders", oid, {"baskets.0.quantity": HUGE_COUNT})
        return Spoil(
            TICKETS, lambda: edit("orders", oid, {"baskets.0.quantity": basket["quantity"]})
        )
    if fault == "revenue 1e300":
        edit("orders", oid, {"baskets.0.price": 1e300})
        return Spoil(MONEY, lambda: edit("orders", oid, {"baskets.0.price": basket["price"]}))
    if fault == "negative revenue":
        edit("orders", oid, {"baskets.0.price": -500})
        return Spoil(MONEY, lambda: edit("orders", oid, {"baskets.0.price": basket["price"]}))
    if fault == "baskets an object, not a list":
        edit("orders", oid, {"baskets": {str(b["id"]): b for b in bad["baskets"]}})
        return Spoil(BASKETS, lambda: edit("orders", oid, {"baskets": bad["baskets"]}))
    assert fault == "control characters in a name", fault
    event_id = int(bad["event_id"])
    response = stand.http.request(
        "GET",
        stand.settings["qtickets_api"]["QTICKETS_BASE_URL"] + f"/events/{event_id}",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    )
    name = response.json()["data"]["name"]
    edit("events", event_id, {"name": CONTROL_NAME})
    return Spoil(NAME, lambda: edit("events", event_id, {"name": name}))


# -- vk_ads ------------------------------------------------------------------------------------


def _vk(stand: Stand, fault: str) -> Spoil:
    rows = stand.wh.rows(
        "SELECT stat_date, banner_id, impressions, spend, ad_plan_id FROM fact_vk_ads_daily "
        "FINAL WHERE _deleted = 0 AND spend > 0 AND stat_date = "
        "(SELECT max(stat_date) FROM fact_vk_ads_daily) ORDER BY banner_id"
    )
    day, bad_id, shows, spend, plan = rows[0]
    # The good banner is of another ad plan: a renamed plan may hold back all its banners.
    _, good_id, _, good_spend, _ = next(r for r in rows if r[4] != plan)

    def revise(banner: str, **numbers: Any) -> None:
        stand.control("vk/revise", {"date": day.isoformat(), "banner_id": int(banner), **numbers})

    revise(good_id, spent=str(good_spend + 10))
    if fault == "spend x1e17":
        revise(bad_id, spent=str(spend * Decimal(10) ** 17))
        return Spoil(SPEND, lambda: revise(bad_id, spent=str(spend)))
    if fault == "control characters in a name":
        body = {"kind": "ad_plans", "id": int(plan)}
        old = stand.control("vk/rename", {**body, "name": CONTROL_NAME})["old_name"]
        return Spoil(NAME, lambda: stand.control("vk/rename", {**body, "name": old}))
    if fault == "statistics rows an object, not a list":
        stand.control("vk/malform", {"banner_ids": [int(bad_id)]})
        return Spoil(ROWS, lambda: stand.control("vk/malform", {"banner_ids": []}))
    assert fault == "impressions 10^20", fault
    revise(bad_id, shows=HUGE_COUNT)
    return Spoil(IMPRESSIONS, lambda: revise(bad_id, shows=shows))


# -- direct ------------------------------------------------------------------------------------


def _direct(stand: Stand, fault: str) -> Spoil:
    day = stand.wh.scalar("SELECT max(stat_date) FROM fact_direct_daily")
    truth = [
        t
        for t in stand.get("direct/truth", since=day.isoformat(), to=day.isoformat())
        if Decimal(t["cost"]) > 0
    ]
    bad = truth[0]
    # The good ad is of another campaign: a renamed campaign may hold back all its ads.
    good = next(t for t in truth if t["campaign_id"] != bad["campaign_id"])

    def revise(ad: dict[str, Any], **numbers: Any) -> None:
        stand.control(
            "direct/revise", {"date": day.isoformat(), "ad_id": int(ad["ad_id"]), **numbers}
        )

    revise(good, cost=str(Decimal(good["cost"]) + 100))
    if fault == "spend x1e17":
        revise(bad, cost=str(Decimal(bad["cost"]) * Decimal(10) ** 17))
        return Spoil(SPEND, lambda: revise(bad, cost=bad["cost"]))
    if fault == "control characters in a name":
        campaign = int(bad["campaign_id"])
        renamed = stand.control("direct/rename", {"campaign_id": campaign, "name": CONTROL_NAME})
        return Spoil(
            NAME,
            lambda: stand.control(
                "direct/rename", {"campaign_id": campaign, "name": renamed["old_name"]}
            ),
        )
    if fault == "report line cut short":
        stand.control("direct/config", {"truncate_ad_ids": [int(bad["ad_id"])]})
        return Spoil(CELLS, lambda: stand.control("direct/config", {"truncate_ad_ids": []}))
    assert fault == "impressions 10^20", fault
    revise(bad, impressions=HUGE_COUNT)
    return Spoil(IMPRESSIONS, lambda: revise(bad, impressions=bad["impressions"]))


# -- gmail -------------------------------------------------------------------------------------


def _gmail(stand: Stand, fault: str) -> Spoil:
    rows = stand.wh.rows(
        "SELECT sale_date, event_id, tickets_sold, revenue FROM fact_qtickets_sales_daily FINAL "
        "WHERE _deleted = 0 AND source = 'gmail' ORDER BY sale_date DESC, event_id"
    )
    day = rows[0][0]
    (_, good_event, good_tickets, good_revenue), (_, bad_event, tickets, revenue) = [
        r for r in rows if r[0] == day
    ][:2]
    corrected = {
        "event_id": good_event,
        "tickets_sold": good_tickets + 1,
        "revenue": str(good_revenue + 100),
    }
    original = {"event_id": bad_event, "tickets_sold": tickets, "revenue": str(revenue)}

    def report(bad_line: dict[str, Any]) -> None:
        # A later report of the same day: it wins for the keys it names.
        stand.control(
            "gmail/messages",
            {"kind": "html", "sale_date": day.isoformat(), "rows": [corrected, bad_line]},
        )

    spoiled = dict(original)
    if fault == "tickets 10^20":
        spoiled["tickets_sold"] = HUGE_COUNT
        names = TICKETS
    elif fault == "negative revenue":
        spoiled["revenue"] = str(-revenue)
        names = MONEY
    else:
        assert fault == "control characters in a name", fault
        spoiled["event_name"] = CONTROL_NAME
        names = NAME
    report(spoiled)
    return Spoil(names, lambda: report(original))


# -- credentials and storms --------------------------------------------------------------------


def revoke(stand: Stand, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the source's credentials wrong: revoked upstream where the sandbox can, else a
    wrong secret in its settings (what an operator's typo does)."""
    if source == "qtickets_sheets":
        key = Path(stand.settings[source]["GSERVICE_JSON"])
        email = json.loads(key.read_text(encoding="utf-8"))["client_email"]
        stand.control(f"google/service-accounts/{email}", method="DELETE")
    elif source == "qtickets_api":
        stand.control("qtickets/token", {"token": "qt-rotated-by-the-organiser-7c1e"})
    elif source == "vk_ads":
        # Cached access tokens would still work: VK forgets them, and the secret is wrong.
        stand.control("vk/tokens/invalidate")
        monkeypatch.setenv("VK_CLIENT_SECRET", "not-the-secret-0000")
    elif source == "direct":
        monkeypatch.setenv("DIRECT_TOKEN", "y0_not-the-token-0000")
    else:
        assert source == "gmail", source
        stand.control("gmail/revoke")


#: Upstream answers a storm may consist of.
STORMS: Final = ("429", "5xx")


def storm(stand: Stand, source: str, kind: str, calls: int | None) -> None:
    """The next `calls` API calls (None: every call) answer 429, or 503."""
    every = calls is None
    n = calls or 100_000
    throttled = kind == "429"
    if source == "qtickets_sheets":
        count = -1 if every else n
        body = {"rate_limit": count} if throttled else {"server_errors": count}
        stand.control("sheets/faults", {**body, "retry_after": 0})
    elif source == "qtickets_api":
        status = 429 if throttled else 503
        stand.control("qtickets/faults", {"status": status, "count": n, "retry_after": 0})
    elif source == "vk_ads":
        if throttled:
            stand.control("vk/throttle", {"count": n, "retry_after": 0})
        else:
            stand.control("vk/fail", {"count": n, "status": 503})
    elif source == "direct":
        stand.control(
            "direct/fault", {"http_status": 429 if throttled else 503, "times": min(n, 1000)}
        )
    else:
        assert source == "gmail", source
        count = -1 if every else n
        body = {"rate_limit": count} if throttled else {"server_errors": count}
        stand.control("gmail/faults", {**body, "retry_after": 0})


def faulted_answers(stand: Stand, source: str) -> int:
    """A count that grows by one with each 429 or 5xx answer of the source's sandbox."""
    if source == "qtickets_api":
        # Its call log keeps no statuses: minus the injected answers still to be served.
        return -sum(int(f["remaining"]) for f in stand.get("qtickets/state")["faults"])
    log = {
        "qtickets_sheets": lambda: stand.get("sheets/requests")["requests"],
        "vk_ads": lambda: stand.get("vk/requests")["requests"],
        "direct": lambda: stand.get("direct/requests"),
        "gmail": lambda: stand.get("gmail/requests")["requests"],
    }[source]()
    return sum(1 for entry in log if entry.get("status") in (429, 500, 502, 503, 504))
