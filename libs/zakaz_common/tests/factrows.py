"""Builders of fact rows for tests, loaded through the real stage → publish path."""

from __future__ import annotations

import itertools
import time
from datetime import date
from decimal import Decimal
from typing import Any

from zakaz_common.clickhouse import Warehouse
from zakaz_common.load import FactSpec, PublishResult, Scope, publish, stage
from zakaz_common.marts import refresh_marts

_runs = itertools.count()


def load(wh: Warehouse, spec: FactSpec, rows: list[dict[str, Any]], scope: Scope) -> PublishResult:
    """Stage and publish rows as a run does, then refresh the marts as `execute` does after a run."""
    run_id = f"run{next(_runs)}"
    stage(wh, spec, run_id, rows, int(time.time()))
    result = publish(wh, spec, run_id, scope)
    refresh_marts(wh)
    return result


def sale(
    day: date,
    event_id: str,
    sold: int,
    revenue: str,
    source: str = "qtickets_sheets",
    city: str = "москва",
    name: str = "",
) -> dict[str, Any]:
    return {
        "source": source,
        "sale_date": day,
        "event_id": event_id,
        "tickets_sold": sold,
        "revenue": Decimal(revenue),
        "event_name": name or f"Шоу {event_id}",
        "city": city,
    }


def event(
    event_id: str, when: date | None, city: str, source: str = "qtickets_sheets", name: str = ""
) -> dict[str, Any]:
    return {
        "source": source,
        "event_id": event_id,
        "event_name": name or f"Концерт {event_id}",
        "event_date": when,
        "city": city,
    }


def vk_row(
    day: date,
    banner: str,
    spend: str,
    city: str,
    when: date | None,
    *,
    plan: str = "p1",
    impressions: int = 1000,
    clicks: int = 10,
) -> dict[str, Any]:
    return {
        "account": "main",
        "stat_date": day,
        "banner_id": banner,
        "impressions": impressions,
        "clicks": clicks,
        "spend": Decimal(spend),
        "ad_plan_id": plan,
        "ad_plan_name": f"План {plan}",
        "ad_group_id": "g1",
        "ad_group_name": "Группа",
        "utm_source": "vk",
        "utm_medium": "cpc",
        "utm_campaign": "",
        "utm_content": "",
        "utm_term": "",
        "city": city,
        "event_date": when,
    }


def direct_row(
    day: date,
    ad: str,
    spend: str,
    city: str,
    when: date | None,
    *,
    campaign: str = "c1",
    impressions: int = 1000,
    clicks: int = 10,
) -> dict[str, Any]:
    return {
        "account": "client",
        "stat_date": day,
        "campaign_id": campaign,
        "ad_group_id": "g1",
        "ad_id": ad,
        "impressions": impressions,
        "clicks": clicks,
        "spend": Decimal(spend),
        "campaign_name": f"Кампания {campaign}",
        "include_vat": True,
        "utm_source": "yandex",
        "utm_medium": "cpc",
        "utm_campaign": "",
        "utm_content": "",
        "utm_term": "",
        "city": city,
        "event_date": when,
    }
