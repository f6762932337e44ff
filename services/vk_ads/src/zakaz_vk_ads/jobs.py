"""The `vk_ads` load: VK Ads banner statistics per day into `fact_vk_ads_daily`.

Default window: yesterday (Moscow) plus `VK_LOOKBACK_DAYS` days before it, since VK revises
recent statistics; `--since/--to/--days` override it. The load speaks for every configured
account over the window, so reloading a day replaces it (a banner gone quiet is retracted).
Nothing is published unless every account was read: a failure leaves the warehouse as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from zakaz_common.cities import CityDirectory
from zakaz_common.facts import VK_ADS
from zakaz_common.load import Reject, Scope
from zakaz_common.runs import LoadOutcome, RunContext

from zakaz_vk_ads.client import VkAdsClient, VkOAuth
from zakaz_vk_ads.settings import AccountSpec, VkAdsSettings, get_settings
from zakaz_vk_ads.tokens import ManagedToken, StaticToken, TokenSource, cache_key, open_token_cache
from zakaz_vk_ads.transform import BannerInfo, banner_info, item_rows, object_id
from zakaz_vk_ads.transport import ClientOptions, VkHttp

#: Counters of `VkHttp` that are events, not requests sent.
_NOT_REQUESTS = frozenset({"retries", "renewals", "rate_pauses"})


@dataclass
class _Tally:
    """What the row stream saw, filled while it is consumed."""

    rows: int = 0
    zero_days: int = 0
    unattributed: int = 0
    spend: Decimal = Decimal("0.00")
    rejects: list[Reject] = field(default_factory=list)
    objects: Counter[str] = field(default_factory=Counter)
    token_cache: set[str] = field(default_factory=set)


def window(ctx: RunContext, settings: VkAdsSettings) -> tuple[date, date]:
    """The run's inclusive stat_date window."""
    yesterday = ctx.today - timedelta(days=1)
    # A default length is given, so there is always a window.
    return ctx.request.window(yesterday, settings.lookback_days + 1) or (yesterday, yesterday)


def load(ctx: RunContext) -> LoadOutcome:
    """Read every configured account over the window and publish it (a dry run writes nothing)."""
    settings = get_settings()
    accounts = settings.accounts()
    since, to = window(ctx, settings)
    options = ClientOptions(
        retry_wait_seconds=settings.retry_wait_seconds,
        max_attempts=settings.max_attempts,
        timeout_seconds=settings.timeout_seconds,
        connect_timeout_seconds=settings.connect_timeout_seconds,
    )
    tally = _Tally()
    with VkHttp(settings.api_url, options, ctx.deadline) as http:
        rows = _rows(ctx, settings, http, accounts, since, to, tally)
        if ctx.request.dry_run:
            for _ in rows:
                pass
            published: dict[str, int] = {}
        else:
            ctx.stage(VK_ADS, rows)
            # Rejected rows first: their keys keep their last good value instead of retracting.
            ctx.reject(tally.rejects)
            labels = [a.label for a in accounts]
            result = ctx.publish(VK_ADS, Scope(equals={"account": labels}, since=since, to=to))
            published = {"upserted": result.upserted, "retracted": result.retracted}
        requests = dict(http.counts)
    ctx.log.info(
        "vk_ads %s…%s: %d rows, %s ₽, %d rejected, %d requests",
        since,
        to,
        tally.rows,
        tally.spend,
        len(tally.rejects),
        sum(v for k, v in requests.items() if k not in _NOT_REQUESTS),
    )
    counts: dict[str, Any] = {
        "since": since.isoformat(),
        "to": to.isoformat(),
        "accounts": len(accounts),
        **dict(tally.objects),
        "zero_days_skipped": tally.zero_days,
        "unattributed_rows": tally.unattributed,
        "spend": str(tally.spend),
        "requests": sum(v for k, v in requests.items() if k not in _NOT_REQUESTS),
        **{f"requests_{k}": v for k, v in sorted(requests.items())},
        "token_cache": ",".join(sorted(tally.token_cache)) or "none",
        **published,
    }
    return LoadOutcome(rows_processed=tally.rows, rows_rejected=len(tally.rejects), counts=counts)


def _rows(
    ctx: RunContext,
    settings: VkAdsSettings,
    http: VkHttp,
    accounts: list[AccountSpec],
    since: date,
    to: date,
    tally: _Tally,
) -> Iterator[dict[str, Any]]:
    cities = CityDirectory.bundled()
    for spec in accounts:
        client = VkAdsClient(http, _token_source(ctx, settings, http, spec, tally))
        banners = _banners(client, tally)
        for item in client.banner_days(list(banners), since, to):
            for result in item_rows(item, banners, spec.label, cities):
                if result is None:
                    tally.zero_days += 1
                elif isinstance(result, Reject):
                    tally.rejects.append(result)
                else:
                    tally.rows += 1
                    tally.spend += result["spend"]
                    tally.unattributed += result["city"] == ""
                    yield result


def _banners(client: VkAdsClient, tally: _Tally) -> dict[str, BannerInfo]:
    """Every banner of the account with its ad group, ad plan and UTM tags resolved."""
    raw = list(client.banners())
    group_ids = [str(b.get("ad_group_id")) for b in raw if b.get("ad_group_id") is not None]
    groups = {object_id(g): g for g in client.ad_groups(group_ids)}
    plan_ids = [str(g.get("ad_plan_id")) for g in groups.values() if g.get("ad_plan_id")]
    plans = {object_id(p): p for p in client.ad_plans(plan_ids)}
    tally.objects.update(banners=len(raw), ad_groups=len(groups), ad_plans=len(plans))
    found: dict[str, BannerInfo] = {}
    for banner in raw:
        info = banner_info(banner, groups, plans)
        if info.banner_id:
            found[info.banner_id] = info
        else:
            tally.rejects.append(
                Reject("banner", {"id": banner.get("id")}, "banner without an integer id")
            )
    return found


def _token_source(
    ctx: RunContext, settings: VkAdsSettings, http: VkHttp, spec: AccountSpec, tally: _Tally
) -> TokenSource:
    if spec.grant == "token":
        tally.token_cache.add("none")
        return StaticToken(settings.static_token())
    client_id, secret = settings.credentials()
    key = cache_key(settings.api_url, client_id, spec.username)
    cache = open_token_cache(ctx.core.redis_url, ctx.core.data_dir, key)
    tally.token_cache.add(cache.where)
    return ManagedToken(cache, VkOAuth(http, client_id, secret, spec.username))
