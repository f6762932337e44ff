"""The VK Ads sandbox's accounts: ad plans, ad groups, banners and their daily statistics.

Everything is drawn from `season.py`, so ads name the same shows (by `utm_content` slugs such
as `msk_02_12`) that the ticket sandboxes sell. Each banner also records the show it advertises
(`expected_city`, `expected_event_date`): an oracle independent of the parsing under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from zakaz_sandbox.season import Show, rng, season

#: The advertiser's app credentials (client_credentials → its own, large account).
ADVERTISER_CLIENT_ID = "vk-sandbox-advertiser"
ADVERTISER_CLIENT_SECRET = "vk-sandbox-secret-5d1e8a7c"  # noqa: S105 - a sandbox credential

#: The agency's app credentials (agency_client_credentials → one account per client).
AGENCY_CLIENT_ID = "vk-sandbox-agency"
AGENCY_CLIENT_SECRET = "vk-sandbox-agency-secret-93b4"  # noqa: S105 - a sandbox credential

#: Usernames of the agency's clients, as `agency_client_name` takes them.
AGENCY_CLIENTS = ("agency_client_spb", "agency_client_kzn")

#: How many days back from the reference day banners have statistics.
HISTORY_DAYS = 45

#: Ad groups per show in the advertiser's account (8 shows × 7 = 56 groups, more than a page).
GROUPS_PER_SHOW = 7

#: Banners per ad group there (56 × 4 = 224 banners, more than one statistics request).
BANNERS_PER_GROUP = 4

_GROUP_NAMES = (
    "Интересы: юмор и стендап",
    "Ретаргетинг: посетители сайта",
    "Похожие на покупателей (look-alike)",
    "Возраст 25–34, {city}",
    "Подписчики сообщества",
    "Ключевые фразы «афиша {city}»",
    "Широкая аудитория, ёмкий охват",
)
_BANNER_NAMES = ("Афиша 1080×1080", "Видео 15 с", "Карусель «Лучшие моменты»", "Текст и картинка")
_TERM = "%D1%81%D1%82%D0%B5%D0%BD%D0%B4%D0%B0%D0%BF"
"""`стендап`, percent-encoded as VK stores Cyrillic in links."""


@dataclass
class Plan:
    """An ad plan (what the VK Ads interface calls a campaign)."""

    id: int
    name: str
    status: str = "active"


@dataclass
class Group:
    """An ad group (legacy name: campaign), with the UTM text VK appends to its links."""

    id: int
    name: str
    ad_plan_id: int
    utm: str = ""
    enable_utm: bool = False
    status: str = "active"


@dataclass
class Banner:
    """A banner (ad) with its landing URL and the show it advertises."""

    id: int
    ad_group_id: int
    name: str
    url: str
    status: str = "active"
    #: The show this banner really advertises; "" / None when its tags name none.
    expected_city: str = ""
    expected_event_date: date | None = None
    url_type: str = "site"
    #: Mean spend per active day, in rubles.
    daily_budget: Decimal = Decimal(300)


@dataclass
class Stat:
    """One banner's numbers for one day (money in rubles with kopecks)."""

    shows: int
    clicks: int
    spent: Decimal


@dataclass
class Account:
    """One VK Ads account: its objects and their statistics by banner and day."""

    label: str
    plans: list[Plan] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    banners: list[Banner] = field(default_factory=list)
    stats: dict[int, dict[date, Stat]] = field(default_factory=dict)


def account_key(client_id: str, username: str = "") -> tuple[str, str]:
    """How the sandbox names an account: the app's client_id and the agency client ("" = own)."""
    return client_id, username


def build_accounts(today: date) -> dict[tuple[str, str], Account]:
    """Every account the sandbox serves, deterministic for a reference day."""
    shows = season(today)
    r = rng("vk_ads", today)
    ids = _Ids()
    accounts = {
        account_key(ADVERTISER_CLIENT_ID): _advertiser(shows, ids),
        account_key(AGENCY_CLIENT_ID): _small("агентство (собственный кабинет)", shows[:1], ids),
        account_key(AGENCY_CLIENT_ID, AGENCY_CLIENTS[0]): _small(
            AGENCY_CLIENTS[0], shows[1:2], ids
        ),
        account_key(AGENCY_CLIENT_ID, AGENCY_CLIENTS[1]): _small(
            AGENCY_CLIENTS[1], shows[3:4], ids
        ),
    }
    for account in accounts.values():
        _fill_stats(account, today, r)
    return accounts


class _Ids:
    def __init__(self) -> None:
        self.plan, self.group, self.banner = 9_120_000, 146_700_000, 228_500_000

    def next_plan(self) -> int:
        self.plan += 1
        return self.plan

    def next_group(self) -> int:
        self.group += 1
        return self.group

    def next_banner(self) -> int:
        self.banner += 1
        return self.banner


#: Share of each show's full-house takings spent on VK, by position in the season: a spread
#: that gives the demo's ROMI every colour once sales come in.
_SPEND_SHARE = ("0.22", "0.30", "0.45", "0.65", "0.28", "0.85", "0.40", "0.55")


def _budget(show: Show, banners: int) -> Decimal:
    """Mean daily spend per banner so the show's VK spend is its share of a full house."""
    share = Decimal(_SPEND_SHARE[(show.event_id - 24080) % len(_SPEND_SHARE)])
    full_house = show.base_price * show.capacity
    return (full_house * share / (banners * HISTORY_DAYS)).quantize(Decimal("0.01"))


def _human_date(day: date) -> str:
    return f"{day.day:02d}.{day.month:02d}"


def _landing(show: Show, variant: int) -> str:
    base = f"https://example-events.ru/afisha/{show.event_id}"
    content = show.utm_content
    if variant == 0:
        # VK fills `{{campaign_id}}` when the ad is clicked; the ETL fills it from the ids.
        return f"{base}?utm_source=vk&utm_medium=cpc&utm_campaign={{{{campaign_id}}}}&utm_content={content}"
    if variant == 1:
        # Case, dash and missing leading zeros are all accepted (CONTRACT §4).
        loose = f"{show.slug.upper()}-{show.show_date.day}-{show.show_date.month}"
        return f"{base}?utm_source=vk&utm_medium=cpc&utm_content={loose}&utm_term={_TERM}"
    if variant == 2:
        # No tags in the link: the ad group's `utm` text carries them.
        return base
    return (
        f"{base}?utm_source=vk&amp;utm_medium=cpc&utm_campaign=vk_{{{{ad_plan_id}}}}"
        f"&utm_content={content}&banner={{{{banner_id}}}}#tickets"
    )


def _advertiser(shows: list[Show], ids: _Ids) -> Account:
    account = Account(label="рекламодатель")
    for show in shows:
        plan = Plan(
            ids.next_plan(),
            f"{show.name} — {show.city_display.strip()}, {_human_date(show.show_date)}",
        )
        account.plans.append(plan)
        for g in range(GROUPS_PER_SHOW):
            group = Group(
                ids.next_group(),
                _GROUP_NAMES[g].format(city=show.city_display.strip()),
                plan.id,
                utm=f"utm_source=vk&utm_medium=paid_social&utm_campaign=plan_{plan.id}"
                f"&utm_content={show.utm_content}",
                enable_utm=True,
            )
            account.groups.append(group)
            for b in range(BANNERS_PER_GROUP):
                account.banners.append(
                    Banner(
                        ids.next_banner(),
                        group.id,
                        _BANNER_NAMES[b],
                        _landing(show, (g + b) % 4),
                        expected_city=show.city,
                        expected_event_date=show.show_date,
                        daily_budget=_budget(show, GROUPS_PER_SHOW * BANNERS_PER_GROUP),
                    )
                )
    _add_odd_tags(account, shows, ids)
    return account


def _add_odd_tags(account: Account, shows: list[Show], ids: _Ids) -> None:
    """Banners whose tags name no show (or an unknown city), and a deleted banner."""
    msk = shows[0]
    plan = Plan(ids.next_plan(), "Тест: разметка с ошибками", status="blocked")
    checked = Group(ids.next_group(), "Проверка меток", plan.id, utm="", enable_utm=False)
    auto = Group(ids.next_group(), "Автометки VK", plan.id, utm="", enable_utm=True)
    account.plans.append(plan)
    account.groups += [checked, auto]
    site = "https://example-events.ru/afisha"
    account.banners += [
        # An impossible date: keeps its spend, attributed to no show.
        Banner(
            ids.next_banner(),
            checked.id,
            "Екатеринбург 31 февраля",
            f"{site}?utm_source=vk&utm_content=ekb_31_02",
        ),
        # An unknown city slug with a valid date: the slug stays as the city (CONTRACT §4).
        Banner(
            ids.next_banner(),
            checked.id,
            "Неизвестный город",
            f"{site}?utm_source=vk&utm_content=unknown_12_12",
        ),
        # The wrong shape altogether.
        Banner(
            ids.next_banner(),
            checked.id,
            "Зимняя акция",
            f"{site}?utm_source=vk&utm_content=promo_winter",
        ),
        # A community link with no tags anywhere (VK's own auto-tags carry no show).
        Banner(
            ids.next_banner(),
            auto.id,
            "Сообщество",
            "https://vk.com/club228817082",
            url_type="vk_group",
        ),
    ]
    # Deleted yesterday, but it spent money in the days before: statistics still count.
    deleted_group = next(g for g in account.groups if g.ad_plan_id == account.plans[0].id)
    account.banners.append(
        Banner(
            ids.next_banner(),
            deleted_group.id,
            "Старый баннер (удалён)",
            f"https://example-events.ru/afisha/{msk.event_id}?utm_source=vk&utm_content={msk.utm_content}",
            status="deleted",
            expected_city=msk.city,
            expected_event_date=msk.show_date,
        )
    )


def _small(label: str, shows: list[Show], ids: _Ids) -> Account:
    account = Account(label=label)
    for show in shows:
        plan = Plan(ids.next_plan(), f"{show.name} — {show.city_display.strip()}")
        account.plans.append(plan)
        for g in range(2):
            group = Group(ids.next_group(), _GROUP_NAMES[g].format(city=show.city_display), plan.id)
            account.groups.append(group)
            for b in range(3):
                account.banners.append(
                    Banner(
                        ids.next_banner(),
                        group.id,
                        _BANNER_NAMES[b],
                        _landing(show, 0 if b != 1 else 1),
                        expected_city=show.city,
                        expected_event_date=show.show_date,
                        daily_budget=_budget(show, 6),
                    )
                )
    return account


def _fill_stats(account: Account, today: date, r: random.Random) -> None:
    first = today - timedelta(days=HISTORY_DAYS)
    group_plan = {g.id: g.ad_plan_id for g in account.groups}
    for banner in account.banners:
        days: dict[date, Stat] = {}
        last = today - timedelta(days=1) if banner.status == "deleted" else today
        # Ads for a past show stop on its date.
        if banner.expected_event_date is not None and banner.expected_event_date < last:
            last = banner.expected_event_date
        day = first + timedelta(days=group_plan[banner.ad_group_id] % 5)
        while day <= last:
            if r.random() < 0.12:
                # A quiet day: VK still returns a zero row for it.
                days[day] = Stat(0, 0, Decimal("0.00"))
            else:
                kopecks = int(banner.daily_budget * 100 * Decimal(r.uniform(0.4, 1.6)))
                shows = max(1, int(kopecks / 100 * r.uniform(2.5, 9.0)))
                clicks = int(shows * r.uniform(0.003, 0.025))
                days[day] = Stat(shows, clicks, Decimal(max(kopecks, 1)) / 100)
            day += timedelta(days=1)
        account.stats[banner.id] = days


# --- How VK shows these objects on the wire -------------------------------------------------

_ZERO = Decimal("0.00")
_CENT = Decimal("0.01")


def objects_json(account: Account, kind: str) -> list[dict[str, Any]]:
    """Every object of a kind (`ad_plans`, `ad_groups`, `banners`) with all its fields."""
    if kind == "ad_plans":
        return [plan_json(p) for p in account.plans]
    if kind == "ad_groups":
        return [group_json(g) for g in account.groups]
    return [banner_json(b) for b in account.banners]


def plan_json(p: Plan) -> dict[str, Any]:
    """An ad plan as `ad_plans.json` serves it."""
    return {
        "id": p.id,
        "name": p.name,
        "status": p.status,
        "objective": "traffic",
        "budget_limit": "0",
        "budget_limit_day": "1500.00",
        "date_start": None,
        "date_end": None,
    }


def group_json(g: Group) -> dict[str, Any]:
    """An ad group as `ad_groups.json` serves it."""
    return {
        "id": g.id,
        "name": g.name,
        "ad_plan_id": g.ad_plan_id,
        "status": g.status,
        "utm": g.utm,
        "enable_utm": g.enable_utm,
        "package_id": 3127,
        "last_updated": "2025-06-01 12:00:00",
    }


def banner_json(b: Banner) -> dict[str, Any]:
    """A banner as `banners.json` serves it: the landing URL under `urls.primary`."""
    community = b.url_type == "vk_group"
    return {
        "id": b.id,
        "ad_group_id": b.ad_group_id,
        "name": b.name,
        "status": b.status,
        "moderation_status": "allowed",
        "urls": {
            "primary": {
                "id": 55_400_000 + b.id % 100_000,
                "url": b.url,
                "url_object_id": b.url.rsplit("club", 1)[-1] if community else "",
                "url_object_type": "vk_group" if community else "",
                "url_types": [b.url_type],
            }
        },
        "created": "2025-05-20 10:15:00",
        "updated": "2025-06-01 09:30:00",
    }


def total(stats: list[Stat]) -> Stat:
    """The sum of several days' numbers."""
    return Stat(
        sum(s.shows for s in stats),
        sum(s.clicks for s in stats),
        sum((s.spent for s in stats), _ZERO),
    )


def _money(value: Decimal) -> str:
    return "0" if value == 0 else format(value.quantize(_CENT, rounding=ROUND_HALF_UP), "f")


def base_json(s: Stat) -> dict[str, Any]:
    """The `base` metrics of a statistics row: counts as ints, money as decimal strings."""
    cpm = s.spent * 1000 / s.shows if s.shows else _ZERO
    cpc = s.spent / s.clicks if s.clicks else _ZERO
    return {
        "shows": s.shows,
        "clicks": s.clicks,
        "goals": 0,
        "spent": _money(s.spent),
        "cpm": _money(cpm),
        "cpc": _money(cpc),
        "cpa": "0",
        # Ratios are numbers, as in VK's sample: its own mix of types.
        "ctr": round(s.clicks * 100 / s.shows, 2) if s.shows else 0,
        "cr": 0,
        "vk": {"goals": 0, "cpa": 0, "cr": 0},
    }


def revise(
    accounts: dict[tuple[str, str], Account],
    day: date,
    *,
    banner_id: int | None = None,
    factor: Decimal | None = None,
    shows: int | None = None,
    clicks: int | None = None,
    spent: Decimal | None = None,
) -> int:
    """Change a day's numbers (every banner by `factor`, or one banner to exact values)."""
    revised = 0
    for account in accounts.values():
        for bid, days in account.stats.items():
            if banner_id is not None and bid != banner_id:
                continue
            old = days.get(day, Stat(0, 0, _ZERO))
            if factor is not None:
                days[day] = Stat(
                    int(old.shows * factor),
                    int(old.clicks * factor),
                    (old.spent * factor).quantize(_CENT, rounding=ROUND_HALF_UP),
                )
            else:
                days[day] = Stat(
                    old.shows if shows is None else shows,
                    old.clicks if clicks is None else clicks,
                    old.spent if spent is None else spent,
                )
            revised += 1
    return revised
