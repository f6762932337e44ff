"""Control endpoints of the Direct sandbox (`/_sandbox/direct/...`): faults, revisions, renames,
oracles."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from zakaz_sandbox.direct_data import DAILY_UNITS, Account, Stat
from zakaz_sandbox.direct_reports import ReportQueue

if TYPE_CHECKING:
    from zakaz_sandbox.direct import DirectState

PREFIX = "/_sandbox/direct"


@dataclass
class Fault:
    """An injected failure: a Direct error code or a bare HTTP status, for `times` requests."""

    code: int | None
    http_status: int | None
    times: int
    service: str | None


class ConfigBody(BaseModel):
    """How reports are served: `auto_mode` offline or online, polls before 200, `retryIn`, and
    ads whose lines come cut short."""

    auto_mode: Literal["offline", "online"] | None = None
    offline_polls: int | None = Field(default=None, ge=0, le=50)
    retry_in: int | None = Field(default=None, ge=0, le=3600)
    #: Ads whose report lines are served without their last cell (`[]`: none again).
    truncate_ad_ids: list[int] | None = None


class ReviseBody(BaseModel):
    """Revise a day: scale it by `factor`, or set (or `remove`) one ad's numbers."""

    date: date
    factor: Decimal | None = Field(default=None, ge=0)
    ad_id: int | None = None
    impressions: int | None = Field(default=None, ge=0)
    clicks: int | None = Field(default=None, ge=0)
    #: Rubles including VAT, as the interface shows them.
    cost: Decimal | None = Field(default=None, ge=0)
    remove: bool = False


class RenameBody(BaseModel):
    """A new name for a campaign (any text: a typo, a paste with control bytes)."""

    campaign_id: int
    name: str


class FaultBody(BaseModel):
    """The next `times` requests (of `service`, or any) answer Direct error `error_code`, or a
    bare HTTP `http_status` as a proxy in front of Direct would."""

    error_code: int | None = None
    http_status: int | None = Field(default=None, ge=400, le=599)
    times: int = Field(default=1, ge=1, le=1000)
    service: Literal["reports", "ads", "campaigns"] | None = None


class QueueBody(BaseModel):
    """Occupy the report queue with `fill` reports built elsewhere, gone after `drain_after`
    refused (9000) requests."""

    fill: int = Field(default=5, ge=0, le=50)
    drain_after: int = Field(default=1, ge=0)


def control_routes(router: APIRouter, state: DirectState) -> None:
    """Add the control endpoints for `state` to `router`."""
    _edit_routes(router, state)

    @router.post(f"{PREFIX}/config")
    def config(body: ConfigBody) -> dict[str, Any]:
        with state.lock:
            queue = state.queue
            if body.auto_mode is not None:
                queue.auto_mode = body.auto_mode
            if body.offline_polls is not None:
                queue.offline_polls = body.offline_polls
            if body.retry_in is not None:
                queue.retry_in = body.retry_in
            if body.truncate_ad_ids is not None:
                queue.truncated_ads = {str(i) for i in body.truncate_ad_ids}
            return {
                "auto_mode": queue.auto_mode,
                "offline_polls": queue.offline_polls,
                "retry_in": queue.retry_in,
                "truncate_ad_ids": sorted(queue.truncated_ads),
            }

    @router.post(f"{PREFIX}/revise")
    def revise(body: ReviseBody) -> dict[str, Any]:
        with state.lock:
            account = state.account
            if body.ad_id is None:
                if body.factor is None:
                    raise HTTPException(422, "give factor, or ad_id with numbers or remove")
                return {"changed": account.revise_day(body.date, body.factor)}
            try:
                ad = account.ad(body.ad_id)
            except KeyError:
                raise HTTPException(404, f"no ad {body.ad_id}") from None
            if body.remove:
                account.revised[(body.date, ad.id)] = None
                return {"changed": 1}
            old = account.stat(body.date, ad) or Stat(0, 0, Decimal("0.00"))
            account.revised[(body.date, ad.id)] = Stat(
                body.impressions if body.impressions is not None else old.impressions,
                body.clicks if body.clicks is not None else old.clicks,
                body.cost.quantize(Decimal("0.01")) if body.cost is not None else old.cost,
            )
            return {"changed": 1}

    @router.post(f"{PREFIX}/fault")
    def fault(body: FaultBody) -> dict[str, Any]:
        if body.error_code is None and body.http_status is None:
            raise HTTPException(422, "give error_code or http_status")
        with state.lock:
            state.faults.append(Fault(body.error_code, body.http_status, body.times, body.service))
            return {"queued_faults": sum(f.times for f in state.faults)}

    @router.post(f"{PREFIX}/queue")
    def queue(body: QueueBody) -> dict[str, Any]:
        with state.lock:
            state.queue.phantom_reports = body.fill
            state.queue.phantom_drain_after = body.drain_after
            return {"phantom_reports": body.fill, "drain_after": body.drain_after}

    @router.post(f"{PREFIX}/reset")
    def reset() -> dict[str, Any]:
        with state.lock:
            state.account = Account.build(state.account.today)
            state.queue = ReportQueue()
            state.faults.clear()
            state.log.clear()
            state.units_left = DAILY_UNITS
            return {"reset": True}

    @router.get(f"{PREFIX}/requests")
    def requests() -> list[dict[str, Any]]:
        with state.lock:
            return [dict(entry) for entry in state.log]

    @router.get(f"{PREFIX}/truth")
    def truth(since: date, to: date, include_vat: bool = True) -> list[dict[str, Any]]:
        with state.lock:
            return [
                {
                    "date": row.day.isoformat(),
                    "campaign_id": str(row.campaign.id),
                    "campaign_name": row.campaign.name,
                    "ad_group_id": str(row.ad.ad_group_id),
                    "ad_id": str(row.ad.id),
                    "impressions": row.stat.impressions,
                    "clicks": row.stat.clicks,
                    "cost": str(row.stat.cost_with(include_vat)),
                    "expected_city": row.ad.expected_city,
                    "expected_event_date": (
                        row.ad.expected_event_date.isoformat()
                        if row.ad.expected_event_date
                        else None
                    ),
                }
                for row in state.account.rows(since, to)
            ]

    @router.get(f"{PREFIX}/ads")
    def ads() -> list[dict[str, Any]]:
        with state.lock:
            return [
                {
                    "id": str(ad.id),
                    "campaign_id": str(ad.campaign_id),
                    "ad_group_id": str(ad.ad_group_id),
                    "type": ad.type,
                    "link": ad.link,
                    "expected_city": ad.expected_city,
                    "expected_event_date": (
                        ad.expected_event_date.isoformat() if ad.expected_event_date else None
                    ),
                }
                for ad in state.account.ads
            ]


def _edit_routes(router: APIRouter, state: DirectState) -> None:
    """The controls that change what the account holds beyond its numbers."""

    @router.post(f"{PREFIX}/rename")
    def rename(body: RenameBody) -> dict[str, Any]:
        """Rename a campaign; answers the old name too."""
        with state.lock:
            campaign = state.account.campaigns.get(body.campaign_id)
            if campaign is None:
                raise HTTPException(404, f"no campaign {body.campaign_id}")
            state.account.campaigns[body.campaign_id] = replace(campaign, name=body.name)
            return {"renamed": 1, "old_name": campaign.name}
