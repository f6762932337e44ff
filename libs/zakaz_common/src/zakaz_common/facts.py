"""How each contract fact is loaded (key, additive columns, attributes): one spec per fact.

Sources stage rows with exactly these columns and publish through `zakaz_common.load`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from zakaz_common.clickhouse import Warehouse
from zakaz_common.load import FactSpec

#: Sales per (source, sale_date, event_id); several rows of one key add up (sheet rows, baskets).
SALES = FactSpec(
    fact="fact_qtickets_sales_daily",
    staging="stg_qtickets_sales",
    key=("source", "sale_date", "event_id"),
    summed=("tickets_sold", "revenue"),
    latest=("event_name", "city"),
    date_column="sale_date",
)

#: Events as each source sees them; `dim_events` picks one row per event.
EVENTS = FactSpec(
    fact="dim_events_src",
    staging="stg_events",
    key=("source", "event_id"),
    latest=("event_name", "event_date", "city"),
)


def live_events(
    wh: Warehouse, source: str, event_ids: Collection[str] | None = None
) -> dict[str, tuple[str, date | None, str]]:
    """The events `source` last published (all, or those of `event_ids`): name, date, city.

    What an event whose record is rejected now keeps on its sales and inventory rows.
    """
    if event_ids is not None and not event_ids:
        return {}
    found = wh.rows(
        f"SELECT event_id, event_name, event_date, city FROM {EVENTS.fact} FINAL "
        "WHERE source = {source:String} AND ({all:Bool} OR event_id IN {ids:Array(String)})",
        {"source": source, "all": event_ids is None, "ids": sorted(event_ids or ())},
    )
    return {str(e): (str(name), day, str(city)) for e, name, day, city in found}


#: Seat inventory per event, as last observed.
INVENTORY = FactSpec(
    fact="fact_qtickets_inventory_latest",
    staging="stg_qtickets_inventory",
    key=("source", "event_id"),
    latest=("event_name", "event_date", "city", "tickets_total", "tickets_left", "updated_at"),
)

_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

#: VK Ads statistics per (account, stat_date, banner).
VK_ADS = FactSpec(
    fact="fact_vk_ads_daily",
    staging="stg_vk_ads_daily",
    key=("account", "stat_date", "banner_id"),
    summed=("impressions", "clicks", "spend"),
    latest=(
        "ad_plan_id",
        "ad_plan_name",
        "ad_group_id",
        "ad_group_name",
        *_UTM,
        "city",
        "event_date",
    ),
    date_column="stat_date",
)

#: Yandex Direct statistics per (account, stat_date, campaign, ad group, ad).
DIRECT = FactSpec(
    fact="fact_direct_daily",
    staging="stg_direct_daily",
    key=("account", "stat_date", "campaign_id", "ad_group_id", "ad_id"),
    summed=("impressions", "clicks", "spend"),
    latest=("campaign_name", "include_vat", *_UTM, "city", "event_date"),
    date_column="stat_date",
)
