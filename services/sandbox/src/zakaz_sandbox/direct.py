"""Yandex Direct API v5 stand-in: `/json/v5/reports`, `/json/v5/ads` and `/json/v5/campaigns`.

Requests are authorised as Direct does (an agency's OAuth token and the client's `Client-Login`:
error 53 for a bad token, 54 for a login that is not the agency's client, 8800 for one Direct
does not know). Reports' errors are HTTP 400/500 with a JSON body, the JSON services' are HTTP
200 with one; the JSON services spend points and say so in `Units`. The report queue and its
TSV live in `direct_reports`, the account in `direct_data`, the control endpoints
(`/_sandbox/direct/...`: config, revise, fault, queue, reset, requests, truth, ads) in
`direct_control`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from zakaz_sandbox.direct_control import Fault, control_routes
from zakaz_sandbox.direct_data import (
    CLIENT_LOGIN,
    DAILY_UNITS,
    OTHER_LOGIN,
    TOKEN,
    Account,
    Ad,
)
from zakaz_sandbox.direct_reports import DirectFail, ReportQueue

_AD_FIELDS: Final = frozenset({"Id", "CampaignId", "AdGroupId", "State", "Status", "Type"})
_AD_SUBFIELDS: Final = {
    "TextAd": frozenset({"Title", "Href"}),
    "TextImageAd": frozenset({"Href"}),
    "TextAdBuilderAd": frozenset({"Href"}),
    "CpcVideoAdBuilderAd": frozenset({"Href"}),
    "CpmBannerAdBuilderAd": frozenset({"Href"}),
    "CpmVideoAdBuilderAd": frozenset({"Href"}),
    "MobileAppAd": frozenset({"TrackingUrl"}),
}
_CAMPAIGN_FIELDS: Final = frozenset({"Id", "Name", "State", "Status", "Type", "Currency"})
_SELECTION_CAPS: Final = {"Ids": 10_000, "AdGroupIds": 1_000, "CampaignIds": 10}
_PAGE_MAX: Final = 10_000

_ERRORS: Final = {
    52: ("Сервер авторизации временно недоступен", "Authorization server temporarily unavailable"),
    53: ("Ошибка авторизации", "Authorization error"),
    54: ("Нет прав", "No rights"),
    58: ("Незавершенная регистрация", "Incomplete registration"),
    152: ("Недостаточно баллов", "Not enough units"),
    1000: ("Сервер временно недоступен", "Server temporarily unavailable"),
    1002: ("Ошибка операции", "Operation error"),
    3000: ("Нет доступа к API", "No access to API"),
    4000: ("Неверные параметры запроса", "Invalid request parameters"),
    4001: ("Неверно задан параметр", "Invalid parameter"),
    8000: ("Неверный запрос", "Invalid request"),
    8800: ("Объект не найден", "Object not found"),
    9000: ("Превышено ограничение на количество отчетов в очереди", "Report queue limit exceeded"),
}
_SERVER_CODES: Final = frozenset({52, 1000, 1002})


Answer = tuple[int, dict[str, str], str]
"""(HTTP status, extra headers, body) of a served request."""


@dataclass
class DirectState:
    """One sandbox's account, report queue, faults and request log."""

    account: Account
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: ReportQueue = field(default_factory=ReportQueue)
    faults: list[Fault] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    units_left: int = DAILY_UNITS
    _request_no: int = 0

    def request_id(self) -> str:
        """A fresh RequestId."""
        self._request_no += 1
        return str(8695244274068608439 + self._request_no)

    def take_fault(self, service: str) -> Fault | None:
        """The next injected fault for this service, used up by one."""
        for fault in self.faults:
            if fault.service in {None, service} and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def spend_units(self, cost: int) -> str:
        """Take points for a JSON-service call; the `Units` header value."""
        if self.units_left < cost:
            raise DirectFail(152, "Недостаточно баллов для выполнения запроса", "Not enough units")
        self.units_left -= cost
        return f"{cost}/{self.units_left}/{DAILY_UNITS}"


Handler = Callable[[DirectState, Request, dict[str, Any], str, dict[str, Any]], Answer]
"""A service's answer to an authorised request: (state, request, body, login, log entry)."""


def create_router(*, today: date | None = None) -> APIRouter:
    """The Direct sandbox around `today` (Moscow today by default), with its own state."""
    state = DirectState(Account.build(today))
    router = APIRouter()

    @router.post("/json/v5/reports")
    async def reports(request: Request) -> Response:
        raw = await request.body()
        with state.lock:
            return _serve(state, "reports", request, raw, _reports)

    @router.post("/json/v5/ads")
    async def ads(request: Request) -> Response:
        raw = await request.body()
        with state.lock:
            return _serve(state, "ads", request, raw, _ads)

    @router.post("/json/v5/campaigns")
    async def campaigns(request: Request) -> Response:
        raw = await request.body()
        with state.lock:
            return _serve(state, "campaigns", request, raw, _campaigns)

    control_routes(router, state)
    return router


def _serve(
    state: DirectState, service: str, request: Request, raw: bytes, handler: Handler
) -> Response:
    """Log, inject faults, authorise, parse and answer one API request."""
    rid = state.request_id()
    entry: dict[str, Any] = {
        "service": service,
        "client_login": request.headers.get("Client-Login"),
        "accept_language": request.headers.get("Accept-Language"),
    }
    if service == "reports":
        entry["processing_mode"] = request.headers.get("processingMode")
        entry["money_in_micros"] = request.headers.get("returnMoneyInMicros", "").lower() != "false"
    state.log.append(entry)
    ru = (request.headers.get("Accept-Language") or "en").lower().startswith("ru")
    try:
        fault = state.take_fault(service)
        if fault is not None and fault.http_status is not None:
            entry["status"] = fault.http_status
            return Response(
                f"<html><body><h1>{fault.http_status}</h1></body></html>", fault.http_status
            )
        if fault is not None and fault.code is not None:
            raise DirectFail(fault.code, "Ошибка, заданная через /_sandbox/direct/fault")
        login = _authorize(request)
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise DirectFail(
                8000, "Тело запроса не является JSON", "The body is not JSON"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
            raise DirectFail(8000, "Не указан объект params", "params is missing")
        status, headers, content = handler(state, request, body, login, entry)
    except DirectFail as fail:
        entry.update(status="error", error_code=fail.code)
        error = {
            "request_id": rid,
            "error_code": str(fail.code) if service == "reports" else fail.code,
            "error_string": _ERRORS.get(fail.code, ("Ошибка", "Error"))[0 if ru else 1],
            "error_detail": fail.ru if ru else fail.en,
        }
        http = (500 if fail.code in _SERVER_CODES else 400) if service == "reports" else 200
        return JSONResponse({"error": error}, status_code=http, headers={"RequestId": rid})
    entry["status"] = status
    headers = {"RequestId": rid, **headers}
    if service == "reports":
        media = "text/tab-separated-values; charset=utf-8"
        return Response(content, status_code=status, headers=headers, media_type=media)
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def _authorize(request: Request) -> str:
    auth = request.headers.get("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DirectFail(53, "OAuth-токен не указан", "OAuth token is missing")
    if token.strip() != TOKEN:
        raise DirectFail(53, "Недействительный OAuth-токен", "Invalid OAuth token")
    login = (request.headers.get("Client-Login") or "").strip().lower()
    if not login:
        raise DirectFail(
            8000,
            "Для агентского токена обязателен HTTP-заголовок Client-Login",
            "An agency token requires the Client-Login header",
        )
    if login == OTHER_LOGIN:
        raise DirectFail(
            54, f"Нет прав на доступ к данным клиента {login}", f"No rights to {login}"
        )
    if login.replace(".", "-") != CLIENT_LOGIN:
        raise DirectFail(8800, f"Клиент с логином {login} не найден", f"Client {login} not found")
    return CLIENT_LOGIN


def _reports(
    state: DirectState, request: Request, body: dict[str, Any], login: str, entry: dict[str, Any]
) -> Answer:
    entry["report_name"] = body["params"].get("ReportName")
    return state.queue.answer(state.account, request.headers, body["params"], login)


def _ads(
    state: DirectState, request: Request, body: dict[str, Any], login: str, entry: dict[str, Any]
) -> Answer:
    params = _get_params(body)
    criteria = params.get("SelectionCriteria")
    if not isinstance(criteria, dict) or not any(criteria.get(k) for k in _SELECTION_CAPS):
        raise DirectFail(
            4001,
            "В SelectionCriteria должен быть указан хотя бы один из параметров Ids, AdGroupIds, "
            "CampaignIds",
            "SelectionCriteria needs Ids, AdGroupIds or CampaignIds",
        )
    for key, cap in _SELECTION_CAPS.items():
        if len(criteria.get(key) or []) > cap:
            raise DirectFail(4001, f"В массиве {key} не может быть больше {cap} элементов")
    fields = _field_names(params, "FieldNames", _AD_FIELDS)
    subfields = {
        kind: _field_names(params, f"{kind}FieldNames", allowed, required=False)
        for kind, allowed in _AD_SUBFIELDS.items()
    }
    chosen = [ad for ad in state.account.ads if _selected(ad, criteria)]
    page, limited_by = _page(params, chosen, entry)
    units = state.spend_units(15 + (len(page) + 1999) // 2000)
    result: dict[str, Any] = {"Ads": [_ad_object(ad, fields, subfields) for ad in page]}
    if limited_by is not None:
        result["LimitedBy"] = limited_by
    return _json_result(result, units, login)


def _campaigns(
    state: DirectState, request: Request, body: dict[str, Any], login: str, entry: dict[str, Any]
) -> Answer:
    params = _get_params(body)
    criteria = params.get("SelectionCriteria")
    if not isinstance(criteria, dict):
        raise DirectFail(8000, "Не указан параметр SelectionCriteria")
    fields = _field_names(params, "FieldNames", _CAMPAIGN_FIELDS)
    ids = {int(i) for i in criteria.get("Ids") or []}
    chosen = [c for c in state.account.campaigns.values() if not ids or c.id in ids]
    page, limited_by = _page(params, chosen, entry)
    units = state.spend_units(10 + len(page))
    objects = []
    for c in page:
        full = {
            "Id": c.id,
            "Name": c.name,
            "State": c.state,
            "Status": c.status,
            "Type": c.type,
            "Currency": "RUB",
        }
        objects.append({k: v for k, v in full.items() if k in fields})
    result: dict[str, Any] = {"Campaigns": objects}
    if limited_by is not None:
        result["LimitedBy"] = limited_by
    return _json_result(result, units, login)


def _get_params(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("method") != "get":
        raise DirectFail(8000, f"Метод {body.get('method')!r} не поддерживается песочницей")
    params: dict[str, Any] = body["params"]
    return params


def _field_names(
    params: dict[str, Any], key: str, allowed: frozenset[str], *, required: bool = True
) -> set[str]:
    names = params.get(key)
    if names is None and not required:
        return set()
    if not isinstance(names, list) or not names:
        raise DirectFail(8000, f"Не указан параметр {key}", f"{key} is required")
    unknown = sorted(set(names) - allowed)
    if unknown:
        raise DirectFail(8000, f"Недопустимые значения в {key}: {', '.join(map(str, unknown))}")
    return set(names)


def _selected(ad: Ad, criteria: dict[str, Any]) -> bool:
    for key, value in (
        ("Ids", ad.id),
        ("AdGroupIds", ad.ad_group_id),
        ("CampaignIds", ad.campaign_id),
    ):
        wanted = criteria.get(key)
        if wanted and value not in {int(i) for i in wanted}:
            return False
    return True


def _page(
    params: dict[str, Any], items: list[Any], entry: dict[str, Any]
) -> tuple[list[Any], int | None]:
    page = params.get("Page") or {}
    try:
        limit = int(page.get("Limit", _PAGE_MAX))
        offset = int(page.get("Offset", 0))
    except (TypeError, ValueError):
        raise DirectFail(4000, "Page.Limit и Page.Offset должны быть числами") from None
    if not 1 <= limit <= _PAGE_MAX or offset < 0:
        raise DirectFail(4000, f"Page.Limit от 1 до {_PAGE_MAX}, Page.Offset не меньше 0")
    entry["offset"] = offset
    chunk = items[offset : offset + limit]
    more = offset + limit < len(items)
    return chunk, (offset + len(chunk) if more else None)


def _ad_object(ad: Ad, fields: set[str], subfields: dict[str, set[str]]) -> dict[str, Any]:
    full = {
        "Id": ad.id,
        "CampaignId": ad.campaign_id,
        "AdGroupId": ad.ad_group_id,
        "State": ad.state,
        "Status": ad.status,
        "Type": ad.type,
    }
    obj: dict[str, Any] = {k: v for k, v in full.items() if k in fields}
    wanted = subfields.get(ad.kind) or set()
    if wanted:
        values = {"Title": ad.title, "Href": ad.link, "TrackingUrl": ad.link}
        obj[ad.kind] = {k: values[k] for k in sorted(wanted)}
    return obj


def _json_result(result: dict[str, Any], units: str, login: str) -> Answer:
    headers = {"Units": units, "Units-Used-Login": login}
    return 200, headers, json.dumps({"result": result}, ensure_ascii=False)
