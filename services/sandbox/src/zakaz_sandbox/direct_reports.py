"""The Direct sandbox's Reports service: the offline queue and the TSV it renders.

A report is keyed by (advertiser, ReportName) and remembers its parameters: the same name with
other parameters is refused with 4000. Offline, the first request answers 201, the next ones 202,
then 200 with the TSV (a report also finishes on its own once its build time is over, as the
real queue does without being polled). At most five reports are built at once per advertiser
(error 9000 beyond). A finished report is kept for hours and served again, with the numbers it
was built with, to an identical request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Final

from zakaz_sandbox.direct_data import Account, StatRow

#: At most this many offline reports are built at once per advertiser.
QUEUE_LIMIT: Final = 5

#: A finished offline report is kept this long and served again to the same request.
KEPT_SECONDS: Final = 5 * 3600

#: Fields of AD_PERFORMANCE_REPORT the sandbox can fill (`--` where a value is undefined).
REPORT_FIELDS: Final = frozenset(
    {
        "Date", "CampaignId", "CampaignName", "CampaignType", "AdGroupId", "AdId",
        "Impressions", "Clicks", "Cost", "Ctr", "AvgCpc", "Conversions", "CostPerConversion",
        "AvgClickPosition", "AvgImpressionPosition", "Bounces", "BounceRate",
    }
)  # fmt: skip

_REPORT_TYPES: Final = frozenset(
    {
        "ACCOUNT_PERFORMANCE_REPORT", "CAMPAIGN_PERFORMANCE_REPORT", "ADGROUP_PERFORMANCE_REPORT",
        "AD_PERFORMANCE_REPORT", "CRITERIA_PERFORMANCE_REPORT", "CUSTOM_REPORT",
        "SEARCH_QUERY_PERFORMANCE_REPORT",
    }
)  # fmt: skip
_REQUIRED: Final = (
    "SelectionCriteria",
    "FieldNames",
    "ReportName",
    "ReportType",
    "DateRangeType",
    "Format",
    "IncludeVAT",
)


class DirectFail(Exception):
    """An error answer: Direct's code and a detail in Russian and English."""

    def __init__(self, code: int, ru: str, en: str | None = None) -> None:
        super().__init__(code, ru)
        self.code, self.ru, self.en = code, ru, en or ru


@dataclass
class _Report:
    params_key: str
    rows: list[StatRow]
    fields: list[str]
    include_vat: bool
    period: tuple[str, str]
    polls_left: int
    ready_at: float
    finished_at: float | None = None


@dataclass
class ReportQueue:
    """Reports asked for, per advertiser, and how the queue behaves."""

    reports: dict[tuple[str, str], _Report] = field(default_factory=dict)
    #: How `processingMode: auto` is served: `offline` (the queue) or `online` (at once).
    auto_mode: str = "offline"
    #: Answers 201/202 an offline report gives before its 200.
    offline_polls: int = 2
    #: `retryIn` seconds; an unpolled report is built after `retry_in × offline_polls` seconds.
    retry_in: int = 2
    #: Reports of other applications occupying the queue, gone after that many 9000 answers.
    phantom_reports: int = 0
    phantom_drain_after: int = 0
    #: Ads whose report lines are served cut short (the last cell missing), as a broken proxy
    #: or a truncated export would.
    truncated_ads: set[str] = field(default_factory=set)

    def pending(self, login: str, now: float) -> int:
        """Reports being built for the login (phantoms included)."""
        own = sum(
            1
            for (who, _), r in self.reports.items()
            if who == login and r.finished_at is None and now < r.ready_at
        )
        return own + self.phantom_reports

    def answer(
        self, account: Account, headers: Any, params: dict[str, Any], login: str
    ) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) for a report request."""
        spec = _checked(params)
        name = spec["ReportName"]
        key = json.dumps(spec, sort_keys=True, ensure_ascii=False)
        now = time.monotonic()
        for old in [k for k, r in self.reports.items() if _expired(r, now)]:
            del self.reports[old]
        found = self.reports.get((login, name))
        if found is not None and found.params_key != key:
            raise DirectFail(
                4000,
                f"Отчет с именем {name} уже сформирован или формируется с другими параметрами",
                f"A report named {name} already exists with other parameters",
            )
        mode = (headers.get("processingMode") or "auto").lower()
        offline = mode == "offline" or (mode == "auto" and self.auto_mode == "offline")
        if found is None:
            if offline and self.pending(login, now) >= QUEUE_LIMIT:
                self._drain_phantoms()
                raise DirectFail(
                    9000,
                    f"В очереди уже {QUEUE_LIMIT} отчетов; дождитесь их формирования",
                    f"{QUEUE_LIMIT} reports are already in the queue; wait for them",
                )
            polls = self.offline_polls if offline else 0
            found = _Report(
                params_key=key,
                rows=account.rows(*_period(spec)),
                fields=list(spec["FieldNames"]),
                include_vat=spec["IncludeVAT"] == "YES",
                period=(spec["SelectionCriteria"]["DateFrom"], spec["SelectionCriteria"]["DateTo"]),
                polls_left=polls,
                ready_at=now + self.retry_in * polls,
            )
            self.reports[(login, name)] = found
            if found.polls_left > 0:
                found.polls_left -= 1
                return 201, self._queue_headers(login, now), ""
        elif found.polls_left > 0 and now < found.ready_at:
            found.polls_left -= 1
            return 202, self._queue_headers(login, now), ""
        found.finished_at = found.finished_at or now
        return 200, {}, _render(found, name, headers, self.truncated_ads)

    def _drain_phantoms(self) -> None:
        if self.phantom_reports and self.phantom_drain_after > 0:
            self.phantom_drain_after -= 1
            if self.phantom_drain_after == 0:
                self.phantom_reports = 0

    def _queue_headers(self, login: str, now: float) -> dict[str, str]:
        in_queue = max(1, self.pending(login, now))
        return {"retryIn": str(self.retry_in), "reportsInQueue": str(in_queue)}


def _checked(params: dict[str, Any]) -> dict[str, Any]:
    missing = [name for name in _REQUIRED if name not in params]
    if missing:
        raise DirectFail(
            8000, f"Не указан обязательный параметр {missing[0]}", f"{missing[0]} is required"
        )
    if params["ReportType"] not in _REPORT_TYPES:
        raise DirectFail(4000, f"Неверный тип отчета {params['ReportType']}")
    if params["Format"] != "TSV" or params["IncludeVAT"] not in {"YES", "NO"}:
        raise DirectFail(4000, "Format должен быть TSV, IncludeVAT — YES или NO")
    fields = params["FieldNames"]
    if not isinstance(fields, list) or not fields:
        raise DirectFail(8000, "FieldNames должен быть непустым массивом")
    unknown = [f for f in fields if f not in REPORT_FIELDS]
    if unknown or len(set(fields)) != len(fields):
        raise DirectFail(4000, f"Недопустимое или повторное поле отчета: {unknown or fields}")
    if params["DateRangeType"] != "CUSTOM_DATE":
        raise DirectFail(4000, "Песочница поддерживает только DateRangeType CUSTOM_DATE")
    _period(params)
    return dict(params)


def _period(params: dict[str, Any]) -> tuple[date, date]:
    criteria = params.get("SelectionCriteria")
    try:
        since = date.fromisoformat(criteria["DateFrom"])  # type: ignore[index]
        to = date.fromisoformat(criteria["DateTo"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise DirectFail(
            4000,
            "Для CUSTOM_DATE нужны DateFrom и DateTo в формате YYYY-MM-DD",
            "CUSTOM_DATE needs DateFrom and DateTo as YYYY-MM-DD",
        ) from None
    if since > to:
        raise DirectFail(4000, "DateFrom позже DateTo", "DateFrom is after DateTo")
    return since, to


def _expired(report: _Report, now: float) -> bool:
    return report.finished_at is not None and now - report.finished_at > KEPT_SECONDS


def _flag(headers: Any, name: str) -> bool:
    return str(headers.get(name) or "").strip().lower() == "true"


def _render(report: _Report, name: str, headers: Any, truncated_ads: AbstractSet[str]) -> str:
    micros = str(headers.get("returnMoneyInMicros") or "").strip().lower() != "false"
    lines = []
    if not _flag(headers, "skipReportHeader"):
        lines.append(f'"{name} ({report.period[0]} - {report.period[1]})"')
    if not _flag(headers, "skipColumnHeader"):
        lines.append("\t".join(report.fields))
    for row in report.rows:
        cells = [_cell(f, row, report.include_vat, micros) for f in report.fields]
        if str(row.ad.id) in truncated_ads:
            cells = cells[:-1]
        lines.append("\t".join(cells))
    if not _flag(headers, "skipReportSummary"):
        lines.append(f"Total rows: {len(report.rows)}")
    return "".join(line + "\n" for line in lines)


def _cell(name: str, row: StatRow, include_vat: bool, micros: bool) -> str:
    stat = row.stat
    cost = stat.cost_with(include_vat)
    plain: dict[str, object] = {
        "Date": row.day.isoformat(),
        "CampaignId": row.campaign.id,
        "CampaignName": row.campaign.name,
        "CampaignType": row.campaign.type,
        "AdGroupId": row.ad.ad_group_id,
        "AdId": row.ad.id,
        "Impressions": stat.impressions,
        "Clicks": stat.clicks,
    }
    if name in plain:
        return str(plain[name])
    if name == "Cost":
        return _money(cost, micros)
    if name == "Ctr" and stat.impressions:
        return f"{stat.clicks / stat.impressions * 100:.2f}"
    if name == "AvgCpc" and stat.clicks:
        return _money(cost / stat.clicks, micros)
    # Conversions need goals, positions and bounces need clicks and Metrica: undefined here.
    return "--"


def _money(amount: Decimal, micros: bool) -> str:
    if micros:
        return str(int((amount * 1_000_000).to_integral_value()))
    return str(amount.quantize(Decimal("0.01")))
