"""The Yandex Direct sandbox's account: campaigns, ads with their links, and daily statistics.

Everything is drawn from `season.py`, so ads name the same shows (by `utm_content` such as
`msk_14_12`) that the ticket sandboxes sell. Each ad also records the show it advertises
(`expected_city`, `expected_event_date`, or none): an oracle independent of the parsing under
test. Costs are kept in kopecks including VAT, as the Direct interface shows them; a report
without VAT divides by 1.2 per row, rounding half up to the kopeck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from zakaz_sandbox.season import Show, reference_day, rng, season

#: The OAuth token of the sandbox's agency (the only one it accepts).
TOKEN: Final = "y0_AgAAAAB3sandboxDirectAgencyToken7f2c"  # noqa: S105 - a sandbox credential

#: The advertiser whose campaigns the sandbox serves (the agency's client).
CLIENT_LOGIN: Final = "zakaz-events"

#: A Direct login that exists but is not the agency's client: error 54.
OTHER_LOGIN: Final = "drugoy-reklamodatel"

#: API points the advertiser may spend per day.
DAILY_UNITS: Final = 64_000

#: How many days back from the reference day the account has statistics.
HISTORY_DAYS: Final = 60

#: Russian VAT that costs include when IncludeVAT is YES.
VAT: Final = Decimal("1.20")

_CENTS: Final = Decimal("0.01")
_SITE: Final = "https://zakaz-events.ru/event"
_UTM: Final = "utm_source=yandex&utm_medium=cpc"


@dataclass(frozen=True)
class Campaign:
    """A campaign of the advertiser."""

    id: int
    name: str
    first_day: date
    last_day: date
    #: Search (`search`) or the ad network, РСЯ (`network`); shapes clicks and prices.
    placement: str
    type: str = "TEXT_CAMPAIGN"
    state: str = "ON"
    status: str = "ACCEPTED"


@dataclass(frozen=True)
class Ad:
    """An ad: its type, the sub-object holding its link, and the show the link names."""

    id: int
    campaign_id: int
    ad_group_id: int
    type: str
    #: The `ads.get` sub-object of this type (`TextAd`, `TextImageAd`, …).
    kind: str
    title: str
    link: str | None
    expected_city: str = ""
    expected_event_date: date | None = None
    state: str = "ON"
    status: str = "ACCEPTED"


@dataclass(frozen=True)
class Stat:
    """One ad's numbers for one day; `cost` in rubles including VAT."""

    impressions: int
    clicks: int
    cost: Decimal

    def cost_with(self, include_vat: bool) -> Decimal:
        """The cost as a report with or without VAT shows it."""
        if include_vat:
            return self.cost
        return (self.cost / VAT).quantize(_CENTS, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class StatRow:
    """A report row before formatting: a day, an ad and its campaign, the numbers."""

    day: date
    campaign: Campaign
    ad: Ad
    stat: Stat


@dataclass
class Account:
    """The advertiser's account around a reference day, with revisions made through control."""

    today: date
    campaigns: dict[int, Campaign] = field(default_factory=dict)
    ads: list[Ad] = field(default_factory=list)
    #: Revised numbers per (day, ad id); None removes the row.
    revised: dict[tuple[date, int], Stat | None] = field(default_factory=dict)

    @classmethod
    def build(cls, today: date | None = None) -> Account:
        """The account as the season around `today` makes it."""
        account = cls(reference_day(today))
        _populate(account)
        return account

    @property
    def first_day(self) -> date:
        """The first day with statistics."""
        return self.today - timedelta(days=HISTORY_DAYS)

    def stat(self, day: date, ad: Ad) -> Stat | None:
        """The ad's numbers for the day (None: no impressions, so no report row)."""
        key = (day, ad.id)
        if key in self.revised:
            return self.revised[key]
        campaign = self.campaigns[ad.campaign_id]
        if not (
            max(campaign.first_day, self.first_day) <= day <= min(campaign.last_day, self.today)
        ):
            return None
        return _generated(self.today, day, ad, campaign)

    def rows(self, since: date, to: date) -> list[StatRow]:
        """Every report row of the days `since`..`to`, by day, campaign and ad."""
        found = []
        day = since
        while day <= to:
            for ad in self.ads:
                stat = self.stat(day, ad)
                if stat is not None and stat.impressions > 0:
                    found.append(StatRow(day, self.campaigns[ad.campaign_id], ad, stat))
            day += timedelta(days=1)
        return found

    def ad(self, ad_id: int) -> Ad:
        """One ad by id (KeyError when unknown)."""
        for ad in self.ads:
            if ad.id == ad_id:
                return ad
        raise KeyError(ad_id)

    def revise_day(self, day: date, factor: Decimal) -> int:
        """Scale a day's clicks and cost (Direct filtering fraud clicks later); rows changed."""
        changed = 0
        for ad in self.ads:
            stat = self.stat(day, ad)
            if stat is None:
                continue
            self.revised[(day, ad.id)] = Stat(
                stat.impressions,
                int((stat.clicks * factor).to_integral_value(ROUND_HALF_UP)),
                (stat.cost * factor).quantize(_CENTS, rounding=ROUND_HALF_UP),
            )
            changed += 1
        return changed


def _populate(account: Account) -> None:
    shows = season(account.today)
    next_campaign, next_group, next_ad = 71_240_800, 5_120_044_000, 14_702_330_000
    for index, show in enumerate(shows):
        placements = ("search", "network") if index < 4 else ("search",)
        for placement in placements:
            next_campaign += 17
            label = "Поиск" if placement == "search" else "РСЯ"
            lead = 40 if placement == "search" else 25
            campaign = Campaign(
                id=next_campaign,
                name=f"{show.name} — {show.city_display.strip()}, {show.show_date:%d.%m} — {label}",
                first_day=show.show_date - timedelta(days=lead),
                last_day=show.show_date,
                placement=placement,
                state="ENDED" if show.show_date < account.today else "ON",
            )
            account.campaigns[campaign.id] = campaign
            for group in range(2):
                next_group += 1
                for slot in range(2):
                    next_ad += 3
                    account.ads.append(
                        _show_ad(next_ad, campaign, next_group, show, index, group, slot)
                    )
    _brand(account, next_campaign + 17, next_group + 1, next_ad + 3)


def _show_ad(
    ad_id: int, campaign: Campaign, group_id: int, show: Show, index: int, group: int, slot: int
) -> Ad:
    page = f"{_SITE}/{show.event_id}/"
    content = show.utm_content
    variant = (index + group * 2 + slot) % 4
    if variant == 0:
        link = (
            f"{page}?{_UTM}&utm_campaign={{campaign_id}}&utm_content={content}&utm_term={{keyword}}"
        )
    elif variant == 1:
        link = f"{page}?{_UTM}&utm_campaign={show.slug}_winter&utm_content={content}&utm_term={{ad_id}}"
    elif variant == 2:
        # Upper case, dashes and no leading zeros: the contract accepts every one of them.
        loose = f"{show.slug.upper()}-{show.show_date.day}-{show.show_date.month}"
        link = f"{page}?{_UTM}&utm_campaign={{campaign_id}}&utm_content={loose}&utm_term={{gbid}}_{{ad_id}}"
    else:
        # Copied out of an HTML page: parameters joined by "&amp;".
        link = (
            f"{page}?utm_medium=cpc&amp;utm_source=yandex&amp;utm_content={content}"
            f"&amp;utm_campaign={{campaign_name}}"
        )
    if index == 2 and group == 1 and slot == 1 and campaign.placement == "search":
        # A text ad leading to a Turbo page has no Href at all: its spend stays unattributed.
        return Ad(ad_id, campaign.id, group_id, "TEXT_AD", "TextAd", _title(show), None)
    if campaign.placement == "network":
        kind, ad_type = (
            ("CpcVideoAdBuilderAd", "CPC_VIDEO_AD") if slot else ("TextImageAd", "TEXT_IMAGE_AD")
        )
    else:
        kind, ad_type = "TextAd", "TEXT_AD"
    return Ad(
        ad_id,
        campaign.id,
        group_id,
        ad_type,
        kind,
        _title(show),
        link,
        expected_city=show.city,
        expected_event_date=show.show_date,
    )


def _brand(account: Account, campaign_id: int, group_id: int, ad_id: int) -> None:
    """An always-on brand campaign whose links name no show (unparsed spend)."""
    campaign = Campaign(
        id=campaign_id,
        name="Бренд «Заказ» — Поиск",
        first_day=account.first_day,
        last_day=account.today,
        placement="search",
    )
    account.campaigns[campaign.id] = campaign
    page = "https://zakaz-events.ru/afisha"
    links = (
        f"{page}?{_UTM}&utm_campaign=brand&utm_content=brand_zima",
        # Filled in it is only digits: still no show.
        f"{page}?{_UTM}&utm_campaign=brand&utm_content={{ad_id}}",
        # 31 February: the right shape, an impossible date.
        f"{page}?{_UTM}&utm_campaign=brand&utm_content=ekb_31_02",
    )
    for n, link in enumerate(links):
        account.ads.append(
            Ad(
                ad_id + 3 * n,
                campaign.id,
                group_id,
                "TEXT_AD",
                "TextAd",
                "Афиша «Заказ»: билеты",
                link,
            )
        )


def _title(show: Show) -> str:
    return f"{show.name.split(':')[0]} в городе {show.city_display.strip()}"


def _generated(today: date, day: date, ad: Ad, campaign: Campaign) -> Stat | None:
    r = rng(f"direct:{ad.id}:{day.isoformat()}", today)
    if r.random() < 0.08:
        return None
    to_show = max(0, (campaign.last_day - day).days)
    weight = 1 + 2 * max(0.0, 1 - to_show / 40)
    if campaign.placement == "network":
        impressions = int(r.randint(400, 3500) * weight)
        ctr, price = r.uniform(0.003, 0.015), r.randint(600, 2500)
    else:
        impressions = int(r.randint(30, 420) * weight)
        ctr, price = r.uniform(0.02, 0.07), r.randint(1800, 6500)
    if day == today:
        # Today is not over yet: about a third of a day's traffic so far.
        impressions = impressions // 3
    # Some ads are shown all day and never clicked: Clicks 0, Cost 0, AvgCpc "--".
    clicks = 0 if r.random() < 0.1 else round(impressions * ctr)
    return Stat(impressions, clicks, (Decimal(clicks * price) / 100).quantize(_CENTS))
