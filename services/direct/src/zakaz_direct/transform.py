"""Pure: a report record plus its ad's link → a `fact_direct_daily` row, or a Reject with a reason.

No I/O and no clock. Direct writes `--` where a value is undefined: counts read it as 0, money
as 0.00, ids and names as empty. Money arrives in rubles with a dot (we ask for it so); micros
are read too, should a body ever come without `returnMoneyInMicros: false` honoured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final
from urllib.parse import quote

from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.facts import DIRECT
from zakaz_common.fields import ID_MAX, NAME_MAX, UINT64, UTM_MAX, read_int, read_text, readable
from zakaz_common.load import Reject
from zakaz_common.normalize import preview
from zakaz_common.utm import Utm, fill_template, parse_show_key, parse_utm

from zakaz_direct.reports import MALFORMED

#: `rejects.source` entity of a report row that could not be read.
ENTITY: Final = "ad_performance_row"

#: Direct's "no value" placeholder in TSV reports.
UNDEFINED: Final = "--"

#: The ad types whose link zakaz reads, and the field holding it; a type missing here has no
#: link of its own (dynamic and smart ads are built from a feed or a site).
AD_LINK_FIELDS: Final = {
    "TextAd": "Href",
    "TextImageAd": "Href",
    "TextAdBuilderAd": "Href",
    "CpcVideoAdBuilderAd": "Href",
    "CpmBannerAdBuilderAd": "Href",
    "CpmVideoAdBuilderAd": "Href",
    "MobileAppAd": "TrackingUrl",
}

_CENTS: Final = Decimal("0.01")
_MICROS: Final = Decimal(1_000_000)
_DIGITS: Final = re.compile(r"\d+", re.ASCII)
_RUBLES: Final = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_ISO_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_NUMBER_MAX: Final = 40
"""Longest Cost text read (micros of the largest Decimal(18, 2) amount are 22 digits)."""
_UTM_FIELDS: Final = ("source", "medium", "campaign", "content", "term")


def ad_link(ad: Mapping[str, Any]) -> str | None:
    """The landing link of an `ads.get` object, whatever its type; None when it has none."""
    for kind, name in AD_LINK_FIELDS.items():
        sub = ad.get(kind)
        if isinstance(sub, Mapping):
            link = sub.get(name)
            if isinstance(link, str) and link.strip():
                return link.strip()
    return None


def template_values(record: Mapping[str, str]) -> dict[str, str]:
    """Direct's substitution parameters that a report row knows, URL-encoded for a link."""
    known = {
        "ad_id": record.get("AdId", ""),
        "banner_id": record.get("AdId", ""),
        "campaign_id": record.get("CampaignId", ""),
        "gbid": record.get("AdGroupId", ""),
        "campaign_name": record.get("CampaignName", ""),
    }
    return {k: quote(v.strip(), safe="") for k, v in known.items() if _defined(v)}


def to_row(
    record: Mapping[str, str],
    *,
    account: str,
    include_vat: bool,
    links: Mapping[str, str | None],
    money_in_micros: bool = False,
    cities: CityDirectory | None = None,
) -> dict[str, Any] | Reject:
    """The fact row of one report record, or why it cannot be read."""
    if MALFORMED in record:
        # Its cells may stand under the wrong names: only the account is sure, so the run
        # retracts none of the account's keys (the line may be any of them).
        return _reject(record, account, "report line has the wrong number of cells", keyed=False)
    try:
        stat_date = _day(record.get("Date"))
        campaign_id = _id(record.get("CampaignId"), "CampaignId", required=True)
        ad_id = _id(record.get("AdId"), "AdId")
        row: dict[str, Any] = {
            "account": account,
            "stat_date": stat_date,
            "campaign_id": campaign_id,
            "ad_group_id": _id(record.get("AdGroupId"), "AdGroupId"),
            "ad_id": ad_id,
            "impressions": _count(record.get("Impressions"), "Impressions"),
            "clicks": _count(record.get("Clicks"), "Clicks"),
            "spend": _money(record.get("Cost"), micros=money_in_micros),
            "campaign_name": _text(record.get("CampaignName")),
            "include_vat": include_vat,
        }
        link = links.get(ad_id) if ad_id else None
        utm = parse_utm(fill_template(link, template_values(record))) if link else Utm()
        tags = {f"utm_{f}": read_text(getattr(utm, f), f"utm_{f}", UTM_MAX) for f in _UTM_FIELDS}
    except BadValue as exc:
        return _reject(record, account, str(exc))
    city, event_date = (
        parse_show_key(tags["utm_content"], stat_date, cities) if utm.content else ("", None)
    )
    row.update(tags, city=city, event_date=event_date)
    return row


def _reject(record: Mapping[str, str], account: str, reason: str, *, keyed: bool = True) -> Reject:
    """A reject holding back the key columns still readable (only the account unless `keyed`)."""
    key: dict[str, Any] = {"account": account}
    if keyed:
        key |= readable(
            {
                "stat_date": lambda: _day(record.get("Date")),
                "campaign_id": lambda: _id(record.get("CampaignId"), "CampaignId", required=True),
                "ad_group_id": lambda: _id(record.get("AdGroupId"), "AdGroupId"),
                "ad_id": lambda: _id(record.get("AdId"), "AdId"),
            }
        )
    raw = {k: preview(v) if isinstance(v, str) and len(v) > 200 else v for k, v in record.items()}
    return Reject(ENTITY, raw, reason, key=key, facts=(DIRECT.fact,))


def _defined(value: str | None) -> bool:
    return value is not None and value.strip() not in {"", UNDEFINED}


def _day(value: str | None) -> date:
    text = (value or "").strip()
    if not _ISO_DAY.fullmatch(text):
        raise BadValue(f"Date is not YYYY-MM-DD: {preview(value)}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise BadValue(f"impossible Date {preview(value)}") from exc


def _id(value: str | None, name: str, *, required: bool = False) -> str:
    if not _defined(value):
        if required:
            raise BadValue(f"{name} is missing")
        return ""
    text = (value or "").strip()
    if len(text) > ID_MAX or not _DIGITS.fullmatch(text):
        raise BadValue(f"{name} is not a number: {preview(value)}")
    return text


def _count(value: str | None, name: str) -> int:
    if not _defined(value):
        return 0
    text = (value or "").strip()
    if len(text) > _NUMBER_MAX or not _DIGITS.fullmatch(text):
        raise BadValue(f"{name} is not a whole non-negative number: {preview(value)}")
    # Stored as UInt64.
    return read_int(text, name, UINT64)


def _money(value: str | None, *, micros: bool) -> Decimal:
    if not _defined(value):
        return Decimal("0.00")
    text = (value or "").strip()
    if len(text) > _NUMBER_MAX:
        raise BadValue(f"Cost is too long for an amount ({len(text)} characters)")
    if micros:
        if not _DIGITS.fullmatch(text):
            raise BadValue(f"Cost in micros is not a whole number: {preview(value)}")
        amount = Decimal(text) / _MICROS
    else:
        if not _RUBLES.fullmatch(text):
            raise BadValue(f"Cost is not an amount in rubles: {preview(value)}")
        amount = Decimal(text)
    if amount >= Decimal(10) ** 16:
        raise BadValue(f"Cost too large for Decimal(18, 2): {preview(value)}")
    return amount.quantize(_CENTS, rounding=ROUND_HALF_UP)


def _text(value: str | None) -> str:
    return read_text(value, "CampaignName", NAME_MAX) if _defined(value) else ""
