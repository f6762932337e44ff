"""The `direct` load: report → ads' links → rows → stage → publish the window for the account."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from zakaz_common.cities import CityDirectory
from zakaz_common.facts import DIRECT
from zakaz_common.load import Reject, Scope
from zakaz_common.runs import LoadOutcome, RunContext

from zakaz_direct.client import DirectClient
from zakaz_direct.reports import MALFORMED, report_request
from zakaz_direct.settings import DirectSettings, get_settings
from zakaz_direct.transform import ENTITY, ad_link, to_row


def load(ctx: RunContext) -> LoadOutcome:
    """One load of yesterday plus `DIRECT_LOOKBACK_DAYS` (or the run's window) for the login."""
    settings = get_settings()
    token, login = settings.require_credentials()
    since, to = window(ctx, settings)
    request = report_request(
        login=login, since=since, to=to, include_vat=settings.vat, run_key=ctx.run_id
    )
    ctx.log.info("direct: report %s for %s..%s", request.name, since, to)
    with DirectClient(
        base_url=settings.api_url,
        token=token,
        login=login,
        max_wait=settings.max_wait_seconds,
        report_timeout=report_timeout(ctx, settings),
        deadline=ctx.deadline,
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    ) as client:
        records = client.report(request)
        ad_ids = {r.get("AdId", "") for r in records if MALFORMED not in r}
        links = {str(ad.get("Id")): ad_link(ad) for ad in client.ads(ad_ids)}
        stats = client.stats

    cities = CityDirectory.bundled()
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for record in records:
        out = to_row(record, account=login, include_vat=settings.vat, links=links, cities=cities)
        if isinstance(out, Reject):
            rejects.append(out)
        elif not since <= out["stat_date"] <= to:
            # A row outside the window would land outside the scope this run may retract.
            rejects.append(Reject(ENTITY, dict(record), f"Date outside {since}..{to}"))
        else:
            rows.append(out)

    spend = sum((r["spend"] for r in rows), Decimal("0.00"))
    counts: dict[str, Any] = {
        "since": since.isoformat(),
        "to": to.isoformat(),
        "account": login,
        "include_vat": settings.include_vat,
        "report_name": request.name,
        "report_rows": len(records),
        "report_polls": stats.report_polls,
        "queue_full": stats.queue_full,
        "retries": stats.retries,
        "api_requests": stats.requests,
        "ads": len(links),
        "ads_without_link": len(
            {r["ad_id"] for r in rows if r["ad_id"] and not links.get(r["ad_id"])}
        ),
        "rows_without_show": sum(1 for r in rows if not r["city"]),
        "spend": str(spend),
        "units_spent": stats.units.spent,
        "units_remaining": stats.units.remaining,
        "units_daily_limit": stats.units.daily_limit,
    }
    if not ctx.request.dry_run:
        ctx.stage(DIRECT, rows)
        ctx.reject(rejects)
        result = ctx.publish(DIRECT, Scope(equals={"account": [login]}, since=since, to=to))
        counts.update(upserted=result.upserted, retracted=result.retracted)
    ctx.log.info(
        "direct: %d rows (%d rejected), spend %s, %d polls, units %s",
        len(rows),
        len(rejects),
        spend,
        stats.report_polls,
        stats.units.spent,
    )
    return LoadOutcome(rows_processed=len(rows), rows_rejected=len(rejects), counts=counts)


def window(ctx: RunContext, settings: DirectSettings) -> tuple[date, date]:
    """The run's days: `--since/--to/--days`, else yesterday and the lookback days before it."""
    yesterday = ctx.today - timedelta(days=1)
    found = ctx.request.window(yesterday, settings.lookback_days + 1)
    # With a default number of days the window is never None; keep mypy and a reader sure.
    return found if found is not None else (yesterday, yesterday)


def report_timeout(ctx: RunContext, settings: DirectSettings) -> float:
    """Seconds this run may poll for its report: the setting, else until the run's deadline."""
    if settings.report_timeout_seconds is not None:
        return min(settings.report_timeout_seconds, ctx.deadline.remaining())
    return ctx.deadline.remaining()
