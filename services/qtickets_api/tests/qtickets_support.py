"""Helpers of the qtickets_api tests: drive the sandbox over HTTP and compute expectations.

Expectations are computed here from the sandbox's raw orders and the season's halls, written out
from CONTRACT §5 without the code under test, so a test compares two independent readings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunRequest, RunSummary, execute
from zakaz_common.settings import CoreSettings
from zakaz_qtickets_api.manifest import MANIFEST
from zakaz_sandbox.qtickets import CONTROL, PREFIX
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN

MOSCOW = ZoneInfo("Europe/Moscow")
SalesKey = tuple[date, str]


@dataclass
class Sandbox:
    """The QTickets sandbox at `url`."""

    url: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10), repr=False)

    @property
    def api(self) -> str:
        """The REST API root, as QTICKETS_BASE_URL."""
        return self.url + PREFIX

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST to a control endpoint under /_sandbox/qtickets."""
        response = self.http.post(f"{self.url}{CONTROL}/{path}", json=body or {})
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        """GET a control endpoint under /_sandbox/qtickets."""
        response = self.http.get(f"{self.url}{CONTROL}/{path}")
        response.raise_for_status()
        return response.json()

    def forget_calls(self) -> None:
        """Forget the API calls the sandbox has seen so far."""
        self.http.delete(f"{self.url}{CONTROL}/calls").raise_for_status()

    def clear_faults(self) -> None:
        """Drop every pending injected fault."""
        self.http.delete(f"{self.url}{CONTROL}/faults").raise_for_status()

    def call(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """A GET with a JSON body to the API, with the valid token unless headers are given."""
        headers = kwargs.pop("headers", {"Authorization": f"Bearer {SANDBOX_TOKEN}"})
        return self.http.request(
            kwargs.pop("method", "GET"), self.api + path, json=body, headers=headers, **kwargs
        )

    def orders(self) -> list[dict[str, Any]]:
        """Every order as the API serves it now, in full (PII included)."""
        response = self.call("/orders", {"perPage": 1000})
        response.raise_for_status()
        payload = response.json()
        assert payload["paging"]["total"] == len(payload["data"])
        return list(payload["data"])

    def special(self, role: str) -> int:
        """The id of an order with a role: `late`, `gift`, `paid_then_cancelled`."""
        return int(self.get("state")["special_orders"][role])

    def pii(self) -> list[str]:
        """Every e-mail, phone, name and card number the sandbox serves, phones also as digits."""
        values = set(self.get("pii")["values"])
        values |= {
            "".join(c for c in v if c.isdigit()) for v in values if v.startswith(("+", "8 "))
        }
        return sorted(values)


def run(wh: Warehouse, **request: Any) -> RunSummary:
    """One `qtickets_api` run through the real runtime."""
    return execute(MANIFEST, RunRequest(**request), wh=wh, core=CoreSettings())


def moscow_date(stamp: str) -> date:
    """The Moscow calendar date of an ISO timestamp with an offset."""
    return datetime.fromisoformat(stamp).astimezone(MOSCOW).date()


def live_baskets(order: dict[str, Any]) -> list[dict[str, Any]]:
    """Baskets neither deleted nor refunded."""
    return [b for b in order["baskets"] if b["deleted_at"] is None and b["refunded_at"] is None]


def is_sale(order: dict[str, Any]) -> bool:
    """A paid, not deleted order for an event with at least one live basket."""
    return (
        order["payed"] is True
        and order["deleted_at"] is None
        and order["payed_at"] is not None
        and order["event_id"] is not None
        and bool(live_baskets(order))
    )


def expected_sales(
    orders: list[dict[str, Any]], since: date, to: date
) -> dict[SalesKey, tuple[int, Decimal]]:
    """CONTRACT §5 written out: (Moscow payment date, event) → (tickets, revenue)."""
    found: dict[SalesKey, list[Any]] = defaultdict(lambda: [0, Decimal("0.00")])
    for order in orders:
        if not is_sale(order):
            continue
        day = moscow_date(order["payed_at"])
        if not since <= day <= to:
            continue
        totals = found[(day, str(order["event_id"]))]
        for basket in live_baskets(order):
            totals[0] += basket["quantity"]
            totals[1] += Decimal(str(basket["price"]))
    return {k: (int(v[0]), v[1]) for k, v in found.items()}


def sold_and_held(orders: list[dict[str, Any]]) -> tuple[dict[int, int], dict[int, int]]:
    """Tickets paid and tickets held in unpaid live orders, per show."""
    paid: dict[int, int] = defaultdict(int)
    held: dict[int, int] = defaultdict(int)
    for order in orders:
        if order["deleted_at"] is not None:
            continue
        for basket in live_baskets(order):
            if basket["show_id"] is None:
                continue
            target = paid if order["payed"] else held
            target[basket["show_id"]] += basket["quantity"]
    return paid, held


def view_sales(wh: Warehouse) -> dict[SalesKey, tuple[int, Decimal, str]]:
    """v_sales_latest as (sale_date, event_id) → (tickets_sold, revenue, source)."""
    return {
        (d, e): (int(t), r, s)
        for d, e, t, r, s in wh.rows(
            "SELECT sale_date, event_id, tickets_sold, revenue, source FROM v_sales_latest"
        )
    }


def string_values(wh: Warehouse) -> dict[str, list[str]]:
    """Every distinct value of every String column of every table of the test database."""
    columns = wh.rows(
        "SELECT c.table, c.name FROM system.columns AS c "
        "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = {db:String} AND t.engine NOT IN ('View', 'MaterializedView') "
        "AND c.type LIKE '%String%'",
        {"db": wh.database},
    )
    assert len(columns) > 20, columns
    found: dict[str, list[str]] = {}
    for table, column in columns:
        found[f"{table}.{column}"] = [
            str(v) for (v,) in wh.rows(f"SELECT DISTINCT toString(`{column}`) FROM `{table}`")
        ]
    return found
