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
from zakaz_common.facts import VK_ADS
from zakaz_common.fields import (
    ID_MAX,
    NAME_MAX,
    UINT64,
    UTM_MAX,
    read_digits,
    read_int,
    read_money,
    read_text,
)
from zakaz_common.load import Reject
from zakaz_common.normalize import preview
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
    #: Why the banner's fields cannot be staged ("" when they can): its days are rejected.
    problem: str = ""


def object_id(raw: Mapping[str, Any]) -> str:
    """An object's id as text ("" when missing or not an integer)."""
    value = raw.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return ""
    text = str(value).strip()
    return text if text.isascii() and text.isdigit() and len(text) <= ID_MAX else ""


def landing_url(banner: Mapping[str, Any]) -> str:
    """The banner's landing URL: `urls.primary.url`, else the first slot that has a URL.

    BadValue when `urls` is neither an object nor empty (`[]` is how an empty map is sent).
    """
    urls = banner.get("urls")
    if urls is None or urls == []:
        return ""
    if not isinstance(urls, Mapping):
        raise BadValue(f"urls: {type(urls).__name__} {preview(urls)}, not an object")
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
    """Resolve a banner's group, plan and UTM tags (unknown group or plan: empty names).

    A field that cannot be staged (a name too long or holding control characters, an id not
    of digits, `urls` not an object) sets `problem`, and the banner's days are rejects.
    """
    banner_id = object_id(banner)
    try:
        return _banner_info(banner_id, banner, groups, plans)
    except BadValue as exc:
        return BannerInfo(banner_id, "", "", "", "", Utm(), problem=str(exc))


def _banner_info(
    banner_id: str,
    banner: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Any]],
    plans: Mapping[str, Mapping[str, Any]],
) -> BannerInfo:
    group_id = read_digits(banner.get("ad_group_id"), "ad_group_id", required=False)
    group = groups.get(group_id, {})
    plan_id = read_digits(group.get("ad_plan_id"), "ad_plan_id", required=False)
    plan = plans.get(plan_id, {})
    group_name = read_text(group.get("name"), "ad_group_name", NAME_MAX)
    plan_name = read_text(plan.get("name"), "ad_plan_name", NAME_MAX)
    group_utm = group.get("utm")
    if group_utm is not None and not isinstance(group_utm, str):
        raise BadValue(f"ad group utm: {type(group_utm).__name__} {preview(group_utm)}, not text")
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
    utm = banner_utm(landing_url(banner), group_utm, values)
    tags = {f: read_text(getattr(utm, f), f"utm_{f}", UTM_MAX) for f in _UTM_FIELDS}
    return BannerInfo(
        banner_id=banner_id,
        ad_group_id=group_id,
        ad_group_name=group_name,
        ad_plan_id=plan_id,
        ad_plan_name=plan_name,
        utm=Utm(**tags),
    )


def stat_row(
    row: Mapping[str, Any], info: BannerInfo, account: str, cities: CityDirectory
) -> dict[str, Any] | Reject | None:
    """One `rows[]` entry of banner statistics as a `VK_ADS` row; None for an all-zero day."""
    raw = {"banner_id": info.banner_id, "date": row.get("date"), "base": row.get("base")}
    key: dict[str, Any] = {"account": account, "banner_id": info.banner_id}
    try:
        stat_date = _date(row.get("date"))
        key["stat_date"] = stat_date
        if info.problem:
            raise BadValue(f"banner {info.banner_id}: {info.problem}")
        base = row.get("base")
        if not isinstance(base, Mapping):
            raise BadValue("no `base` metrics in the statistics row (base is not an object)")
        impressions = _count(base.get("shows"), "shows")
        clicks = _count(base.get("clicks"), "clicks")
        spend = _money(base.get("spent"))
    except BadValue as exc:
        return Reject(ENTITY, raw, str(exc), key=key, facts=(VK_ADS.fact,))
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
        key = {"account": account, **({"banner_id": banner_id} if banner_id else {})}
        raw = {"id": preview(item.get("id")), "rows": preview(rows)}
        yield Reject(ENTITY, raw, reason, key=key, facts=(VK_ADS.fact,))
        return
    for row in rows:
        if isinstance(row, Mapping):
            yield stat_row(row, info, account, cities)
        else:
            yield Reject(
                ENTITY,
                {"banner_id": banner_id, "row": preview(row)},
                "row is not an object",
                key={"account": account, "banner_id": banner_id},
                facts=(VK_ADS.fact,),
            )


def _date(value: object) -> date:
    if not isinstance(value, str):
        raise BadValue(f"date: statistics date is not text: {preview(value)}")
    text = value.strip()
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadValue(f"date: statistics date is not YYYY-MM-DD: {preview(value)}") from None


def _count(value: object, name: str) -> int:
    if value is None:
        raise BadValue(f"{name}: missing")
    # Stored as UInt64 (impressions, clicks); a count is never negative.
    return read_int(value, name, UINT64)


def _money(value: object) -> Decimal:
    if value is None:
        raise BadValue("spent: missing")
    # VK sends "544.64"; the reader takes a float through its repr, so no binary noise.
    return read_money(value, "spent")
