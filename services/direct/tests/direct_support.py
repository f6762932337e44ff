"""Driving the Direct sandbox from tests: its control endpoints and oracles over HTTP."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from zakaz_direct.client import DirectClient
from zakaz_sandbox.direct_data import CLIENT_LOGIN, TOKEN


class DirectSandbox:
    """A served Direct sandbox: its API root and its `/_sandbox/direct` controls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.api_url = f"{url}/json/v5"

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST a control endpoint; its JSON answer."""
        response = httpx.post(f"{self.url}/_sandbox/direct/{path}", json=body or {})
        response.raise_for_status()
        return response.json()

    def requests(self, service: str | None = None) -> list[dict[str, Any]]:
        """The API requests the sandbox saw (of one service)."""
        seen = httpx.get(f"{self.url}/_sandbox/direct/requests").json()
        return [r for r in seen if service is None or r["service"] == service]

    def truth(self, since: date, to: date, *, include_vat: bool = True) -> list[dict[str, Any]]:
        """The report rows the sandbox holds for the days, with each ad's expected show."""
        response = httpx.get(
            f"{self.url}/_sandbox/direct/truth",
            params={"since": since.isoformat(), "to": to.isoformat(), "include_vat": include_vat},
        )
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return rows

    def ads(self) -> list[dict[str, Any]]:
        """Every ad with its link and the show it advertises."""
        ads: list[dict[str, Any]] = httpx.get(f"{self.url}/_sandbox/direct/ads").json()
        return ads

    def client(self, **kwargs: Any) -> DirectClient:
        """A real client of the sandbox with waits cut to nothing."""
        options: dict[str, Any] = {
            "base_url": self.api_url,
            "token": TOKEN,
            "login": CLIENT_LOGIN,
            "max_wait": 0.0,
            "report_timeout": 30.0,
        }
        options.update(kwargs)
        return DirectClient(**options)

    def raw_report(self, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """POST a report request as it stands (auth added), for protocol tests."""
        return httpx.post(
            f"{self.api_url}/reports",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Client-Login": CLIENT_LOGIN, **headers},
        )


def spend_by_day_and_campaign(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    """Truth rows summed per (date, campaign id)."""
    found: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        found[(row["date"], row["campaign_id"])] += Decimal(row["cost"])
    return dict(found)


def spend_by_show(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str | None], Decimal]:
    """Truth rows summed per (date, expected city, expected event date)."""
    found: dict[tuple[str, str, str | None], Decimal] = defaultdict(Decimal)
    for row in rows:
        key = (row["date"], row["expected_city"], row["expected_event_date"])
        found[key] += Decimal(row["cost"])
    return dict(found)
