"""Helpers of the vk_ads tests: drive the sandbox's control endpoints, compute expectations.

Expectations come from the sandbox's own data (`vk_data`): each banner records the show it
advertises, independently of the UTM parsing under test.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunRequest, RunSummary, execute
from zakaz_common.settings import CoreSettings
from zakaz_sandbox.vk_data import ADVERTISER_CLIENT_ID, Account, account_key, build_accounts
from zakaz_vk_ads.manifest import MANIFEST

Key = tuple[date, str, date | None]


def control(base: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST to a sandbox control endpoint under /_sandbox/vk."""
    response = httpx.post(f"{base}/_sandbox/vk/{path}", json=body or {}, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def seen(base: str) -> dict[str, Any]:
    """What the sandbox was asked: requests, token requests by grant, live tokens."""
    response = httpx.get(f"{base}/_sandbox/vk/requests", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def api_requests(base: str, suffix: str) -> list[dict[str, Any]]:
    """The API requests whose path ends with `suffix`."""
    return [r for r in seen(base)["requests"] if r["path"].endswith(suffix)]


def run(wh: Warehouse, **request: Any) -> RunSummary:
    """One `vk_ads` run through the real runtime."""
    return execute(MANIFEST, RunRequest(**request), wh=wh, core=CoreSettings())


def nearest(day: int, month: int, around: date) -> date | None:
    """The CONTRACT §4 year rule, written out for the oracle."""
    found = []
    for year in (around.year - 1, around.year, around.year + 1):
        try:
            found.append(date(year, month, day))
        except ValueError:
            continue
    if not found:
        return None
    return min(found, key=lambda d: (abs((d - around).days), -d.toordinal()))


def show_of(account: Account, banner_id: int, stat_date: date) -> tuple[str, date | None]:
    """Where the banner's spend belongs in v_marketing_daily, by the contract's rules."""
    banner = next(b for b in account.banners if b.id == banner_id)
    if "unknown_12_12" in banner.url:
        return "unknown", nearest(12, 12, stat_date)
    return banner.expected_city, banner.expected_event_date


def advertiser(today: date) -> Account:
    """The sandbox's advertiser account as the sandbox builds it for `today`."""
    return build_accounts(today)[account_key(ADVERTISER_CLIENT_ID)]


def expected_marketing(
    account: Account, since: date, to: date
) -> dict[Key, tuple[int, int, Decimal]]:
    """(stat_date, city, event_date) → (impressions, clicks, spend) over a window."""
    totals: dict[Key, list[Any]] = defaultdict(lambda: [0, 0, Decimal("0.00")])
    for banner_id, days in account.stats.items():
        for day, stat in days.items():
            if since <= day <= to and (stat.shows or stat.clicks or stat.spent):
                city, event_date = show_of(account, banner_id, day)
                t = totals[(day, city, event_date)]
                t[0] += stat.shows
                t[1] += stat.clicks
                t[2] += stat.spent
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def marketing(wh: Warehouse) -> dict[Key, tuple[int, int, Decimal]]:
    """v_marketing_daily's VK rows in the same shape."""
    rows = wh.rows(
        "SELECT stat_date, city, event_date, impressions, clicks, spend FROM v_marketing_daily "
        "WHERE platform = 'vk'"
    )
    return {(r[0], r[1], r[2]): (int(r[3]), int(r[4]), Decimal(r[5])) for r in rows}


def default_window(today: date, lookback: int = 3) -> tuple[date, date]:
    """Yesterday and the lookback days before it."""
    yesterday = today - timedelta(days=1)
    return yesterday - timedelta(days=lookback), yesterday
