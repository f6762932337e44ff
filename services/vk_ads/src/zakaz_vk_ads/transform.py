"""Pure VK Ads transforms: banner + ad group + ad plan → UTM and show; statistics row → fact row.

No I/O and no clock. A row that cannot be read becomes a `Reject` with the reason; an all-zero
day becomes None (VK sends one row per day, active or not, and the views may omit zeros).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.load import Reject
from zakaz_common.normalize import clean_text, parse_decimal, parse_int, preview
from zakaz_common.utm import Utm, fill_template, parse_show_key, parse_utm

ENTITY: Final = "banner_day"
"""The `rejects.entity` of a statistics row that could not be read."""

_UTM_FIELDS: Final = ("source", "medium", "campaign", "content", "term")


@dataclass(frozen=True)
class BannerInfo:
    """What a fact row needs to know about its banner, resolved once per banner."""

    banner_id: str
    ad_group_id: str
    ad_group_name: str
    ad_plan_id: str
    ad_plan_name: str
    utm: Utm


def object_id(raw: Mapping[str, Any]) -> str:
    """An object's id as text ("" when missing or not an integer)."""
    value = raw.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return ""
    text = str(value).strip()
    return text if text.isdigit() else ""


def landing_url(banner: Mapping[str, Any]) -> str:
    """The banner's landing URL: `urls.primary.url`, else the first slot that has a URL."""
    urls = banner.get("urls")
    if not isinstance(urls, Mapping):
        return ""
    slots = [urls.get("primary"), *(v for k, v in urls.items() if k != "primary")]
    for slot in slots:
        if isinstance(slot, Mapping) and isinstance(slot.get("url"), str) and slot["url"].strip():
            return str(slot["url"]).strip()
    return ""


def banner_utm(url: str, group_utm: object, values: Mapping[str, str]) -> Utm:
    """UTM tags of the banner's link, each missing one taken from the ad group's `utm` text.

    VK appends the group's tags to the link when it is clicked, so a tag in the link wins and
    the group fills the rest; `{{banner_id}}`-style placeholders are filled from `values`.
    """
    own = parse_utm(url)
    group = parse_utm(group_utm if isinstance(group_utm, str) else "")
    merged = {}
    for name in _UTM_FIELDS:
        value = getattr(own, name) or getattr(group, name)
        # Placeholders survive percent-decoding, so fill them in the decoded text.
        merged[name] = fill_template(value, values) if "{" in value else value
    return Utm(**merged)


def banner_info(
    banner: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Any]],
    plans: Mapping[str, Mapping[str, Any]],
) -> BannerInfo:
    """Resolve a banner's group, plan and UTM tags (unknown group or plan: empty names)."""
    banner_id = object_id(banner)
    group_id = clean_text(banner.get("ad_group_id"))
    group = groups.get(group_id, {})
    plan_id = clean_text(group.get("ad_plan_id"))
    plan = plans.get(plan_id, {})
    group_name, plan_name = clean_text(group.get("name")), clean_text(plan.get("name"))
    values = {
        "banner_id": banner_id,
        "ad_group_id": group_id,
        "ad_group_name": group_name,
        "ad_plan_id": plan_id,
        "ad_plan_name": plan_name,
        # VK keeps myTarget's macro names: its "campaign" is the ad group.
        "campaign_id": group_id,
        "campaign_name": group_name,
    }
    return BannerInfo(
        banner_id=banner_id,
        ad_group_id=group_id,
        ad_group_name=group_name,
        ad_plan_id=plan_id,
        ad_plan_name=plan_name,
        utm=banner_utm(landing_url(banner), group.get("utm"), values),
    )


def stat_row(
    row: Mapping[str, Any], info: BannerInfo, account: str, cities: CityDirectory
) -> dict[str, Any] | Reject | None:
    """One `rows[]` entry of banner statistics as a `VK_ADS` row; None for an all-zero day."""
    raw = {"banner_id": info.banner_id, "date": row.get("date"), "base": row.get("base")}
    try:
        stat_date = _date(row.get("date"))
        base = row.get("base")
        if not isinstance(base, Mapping):
            raise BadValue("no `base` metrics in the statistics row")
        impressions = _count(base.get("shows"), "shows")
        clicks = _count(base.get("clicks"), "clicks")
        spend = _money(base.get("spent"))
    except BadValue as exc:
        return Reject(ENTITY, raw, str(exc))
    if impressions == 0 and clicks == 0 and spend == 0:
        return None
    city, event_date = parse_show_key(info.utm.content, stat_date, cities)
    return {
        "stat_date": stat_date,
        "account": account,
        "ad_plan_id": info.ad_plan_id,
        "ad_plan_name": info.ad_plan_name,
        "ad_group_id": info.ad_group_id,
        "ad_group_name": info.ad_group_name,
        "banner_id": info.banner_id,
        "impressions": impressions,
        "clicks": clicks,
        "spend": spend,
        "utm_source": info.utm.source,
        "utm_medium": info.utm.medium,
        "utm_campaign": info.utm.campaign,
        "utm_content": info.utm.content,
        "utm_term": info.utm.term,
        "city": city,
        "event_date": event_date,
    }


def item_rows(
    item: Mapping[str, Any],
    banners: Mapping[str, BannerInfo],
    account: str,
    cities: CityDirectory,
) -> Iterator[dict[str, Any] | Reject | None]:
    """Every day of one `items[]` entry of `statistics/banners/day.json`."""
    banner_id = object_id(item)
    info = banners.get(banner_id)
    rows = item.get("rows")
    if info is None or not isinstance(rows, list):
        reason = (
            f"statistics for banner {preview(item.get('id'))} that was not asked for"
            if info is None
            else "statistics item without a rows list"
        )
        yield Reject(ENTITY, {"id": item.get("id"), "rows": preview(rows)}, reason)
        return
    for row in rows:
        if isinstance(row, Mapping):
            yield stat_row(row, info, account, cities)
        else:
            yield Reject(
                ENTITY, {"banner_id": banner_id, "row": preview(row)}, "row is not an object"
            )


def _date(value: object) -> date:
    if not isinstance(value, str):
        raise BadValue(f"statistics date is not text: {preview(value)}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadValue(f"statistics date is not YYYY-MM-DD: {preview(value)}") from None


def _count(value: object, name: str) -> int:
    if value is None:
        raise BadValue(f"`{name}` is missing")
    count = parse_int(value)
    if count < 0:
        raise BadValue(f"`{name}` is negative: {preview(value)}")
    return count


def _money(value: object) -> Decimal:
    if value is None:
        raise BadValue("`spent` is missing")
    # VK sends "544.64"; parse_decimal reads a float through its repr, so no binary noise.
    spend = parse_decimal(value)
    if spend < 0:
        raise BadValue(f"`spent` is negative: {preview(value)}")
    return spend
