"""QTickets REST API v1 stand-in under `/api/rest/v1` (shared/upstream-apis.md §1).

Faithful where it matters to a client: filters, sorting, paging and field selection travel in a
JSON body on GET (query strings are ignored), default page sizes are 50 orders / 10 events,
`POST /orders` answers 503 `UNKNOWN_ERROR` (the real one creates orders), unknown paths get the
site's HTML 404, a missing token 401 and a wrong one 403. Control endpoints under
`/_sandbox/qtickets/` refund and cancel orders, inject faults (429 storms, 5xx, slow answers,
broken JSON), rotate the token, switch off server-side select/filters/paging, and corrupt what
is served of an order or event (a field set to any JSON value: a bad number, a wrong shape).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from zakaz_sandbox import qtickets_query as query
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN, QticketsWorld

#: Where the API lives, as on qtickets.ru.
PREFIX: Final = "/api/rest/v1"
#: Where the sandbox's own knobs live.
CONTROL: Final = "/_sandbox/qtickets"
#: Page sizes the live API used when the body named none.
DEFAULT_PER_PAGE: Final = {"orders": 50, "events": 10}
#: The largest perPage honoured (the real limit is unknown; clients check `paging` anyway).
MAX_PER_PAGE: Final = 1000
#: Calls remembered for tests to inspect.
MAX_CALLS: Final = 5000

_MSK: Final = ZoneInfo("Europe/Moscow")
_NOT_FOUND_PAGE: Final = (
    '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>Страница не найдена'
    "</title></head><body><h1>404</h1><p>Страница не найдена. Вернуться на "
    '<a href="https://qtickets.ru/">главную</a>.</p></body></html>'
)
_GATEWAY_PAGE: Final = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}"
    "</h1></center><hr><center>nginx</center></body></html>"
)


class ApiError(Exception):
    """An error the API answers with its JSON body `{"error", "status", "code", "info"}`."""

    def __init__(self, status: int, code: str, error: str, info: Any = None) -> None:
        super().__init__(error)
        self.status, self.code, self.error = status, code, error
        self.info = info if info is not None else []

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        """The error as QTickets sends it."""
        body = {"error": self.error, "status": self.status, "code": self.code, "info": self.info}
        return JSONResponse(body, status_code=self.status, headers=dict(headers or {}))


@dataclass
class Fault:
    """The next `remaining` API calls under `path` answer `status` (after `delay` seconds)."""

    status: int | None
    remaining: int
    path: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    malformed: bool = False


@dataclass
class SandboxState:
    """One router's state: its world, token, faults and switches."""

    today: date | None
    world: QticketsWorld
    token: str = SANDBOX_TOKEN
    faults: list[Fault] = field(default_factory=list)
    ignore_select: bool = False
    ignore_filters: bool = False
    ignore_paging: bool = False
    post_orders: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: Fields served differently from the world's, per (resource, id): dotted path → value.
    #: Only what the API answers changes; the box office (seat maps, refunds) keeps the truth.
    edits: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


class RefundBody(BaseModel):
    """Which baskets to refund (all of the order's when omitted)."""

    basket_ids: list[int] | None = None


class FaultBody(BaseModel):
    """A fault to inject."""

    status: int | None = Field(default=None, ge=200, le=599)
    count: int = Field(default=1, ge=1)
    path: str = ""
    retry_after: float | None = Field(default=None, ge=0)
    delay: float = Field(default=0.0, ge=0, le=60)
    malformed: bool = False


class EditBody(BaseModel):
    """Fields to serve differently: dotted path (`baskets.0.quantity`, `baskets`) → JSON value."""

    set: dict[str, Any] = Field(min_length=1)


class TokenBody(BaseModel):
    """The token the API accepts from now on."""

    token: str = Field(min_length=1)


class ConfigBody(BaseModel):
    """Server behaviours the docs leave unconfirmed, switched off to test a client's defences."""

    ignore_select: bool | None = None
    ignore_filters: bool | None = None
    ignore_paging: bool | None = None


def create_router(*, today: date | None = None) -> APIRouter:
    """A router serving the QTickets REST API v1 and its sandbox controls; state per instance."""
    state = SandboxState(today=today, world=QticketsWorld.build(today))
    router = APIRouter()
    api = _Api(state)
    for path, handler, methods in (
        ("/orders", api.list_orders, ["GET"]),
        ("/orders", api.create_order, ["POST"]),
        ("/orders/{order_id}", api.get_order, ["GET"]),
        ("/events", api.list_events, ["GET"]),
        ("/events/{event_id}", api.get_event, ["GET"]),
        ("/shows/{show_id}/seats", api.seats, ["GET"]),
    ):
        router.add_api_route(PREFIX + path, _endpoint(state, handler), methods=methods)
    router.add_api_route(
        PREFIX + "/{rest:path}",
        _html_not_found,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    _add_controls(router, state)
    return router


Handler = Callable[[Request, dict[str, Any]], Response]


def _endpoint(state: SandboxState, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        raw = await request.body()
        path = request.url.path.removeprefix(PREFIX)
        state.calls.append(
            {
                "method": request.method,
                "path": path,
                "query": request.url.query,
                "body": raw.decode("utf-8", errors="replace"),
            }
        )
        del state.calls[:-MAX_CALLS]
        injected = await _inject(state, path)
        if injected is not None:
            return injected
        try:
            _authorise(state, request.headers.get("authorization", ""))
            return handler(request, _body(raw))
        except ApiError as exc:
            return exc.response()
        except query.BodyError as exc:
            return ApiError(400, "VALIDATION_ERROR", str(exc)).response()

    return handle


async def _inject(state: SandboxState, path: str) -> Response | None:
    fault = next((f for f in state.faults if path.startswith(f.path)), None)
    if fault is None:
        return None
    fault.remaining -= 1
    if fault.remaining <= 0:
        state.faults.remove(fault)
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.malformed:
        return Response('{"data": [{"id": 2051', media_type="application/json")
    if fault.status is None:
        return None
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    if fault.status in {502, 504}:
        reason = "Bad Gateway" if fault.status == 502 else "Gateway Time-out"
        page = _GATEWAY_PAGE.format(status=fault.status, reason=reason)
        return HTMLResponse(page, status_code=fault.status, headers=headers)
    if fault.status == 429:
        return ApiError(429, "TOO_MANY_REQUESTS", "Too Many Requests").response(headers)
    return ApiError(fault.status, "UNKNOWN_ERROR", "Unknown error").response(headers)


def _authorise(state: SandboxState, header: str) -> None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "UNAUTHORIZED", "Unauthorized")
    if token.strip() != state.token:
        raise ApiError(403, "ACCESS_DENIED", "Access denied")


def _body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "BAD_REQUEST", f"Invalid JSON body: {exc.args[0]}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "The request body must be a JSON object")
    return body


async def _html_not_found(request: Request) -> HTMLResponse:
    return HTMLResponse(_NOT_FOUND_PAGE, status_code=404)


class _Api:
    """The API's resources over one state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def list_orders(self, request: Request, body: dict[str, Any]) -> Response:
        orders = [self._served("orders", o) for o in self.state.world.orders.values()]
        return self._list(orders, body, "orders")

    def create_order(self, request: Request, body: dict[str, Any]) -> Response:
        # The live API answered a filter-like body with this; a real one may create an order.
        self.state.post_orders += 1
        raise ApiError(503, "UNKNOWN_ERROR", "Unknown error")

    def get_order(self, request: Request, body: dict[str, Any]) -> Response:
        order = self.state.world.orders.get(_id(request.path_params["order_id"]) or -1)
        if order is None:
            raise _not_found("Order", request.path_params["order_id"])
        return JSONResponse({"data": self._select(self._served("orders", order), body)})

    def list_events(self, request: Request, body: dict[str, Any]) -> Response:
        events = [self._served("events", e) for e in self.state.world.events.values()]
        return self._list(events, body, "events")

    def get_event(self, request: Request, body: dict[str, Any]) -> Response:
        event = self.state.world.events.get(_id(request.path_params["event_id"]) or -1)
        if event is None:
            raise _not_found("Event", request.path_params["event_id"])
        return JSONResponse({"data": self._select(self._served("events", event), body)})

    def seats(self, request: Request, body: dict[str, Any]) -> Response:
        world = self.state.world
        show_id = _id(request.path_params["show_id"])
        show = world.show(show_id) if show_id is not None else None
        if show is None or show.show_id in world.deleted_show_ids:
            raise _not_found("Show", request.path_params["show_id"])
        seats = list(world.seat_map(show.show_id).values())
        if not self.state.ignore_filters:
            seats = [s for s in seats if query.matches(s, query.where(body))]
        paths = query.paths(body.get("select"))
        if body.get("flat") and not self.state.ignore_select:
            return JSONResponse({"data": {s["id"]: query.project(s, paths) for s in seats}})
        zones = world.zones(show.show_id)
        tree: dict[str, Any] = {}
        for seat in seats:
            zone = tree.setdefault(
                seat["zone_id"],
                {"zone_id": seat["zone_id"], "name": zones[seat["zone_id"]], "description": ""},
            )
            minimal = {"seat_id": seat["root_id"], "admission": seat["admission"]}
            shown = (
                query.project(seat, paths) if paths and not self.state.ignore_select else minimal
            )
            zone.setdefault("seats", {})[seat["short_seat_id"]] = shown
        return JSONResponse({"data": tree})

    def _served(self, kind: str, item: dict[str, Any]) -> dict[str, Any]:
        edits = self.state.edits.get((kind, int(item["id"])))
        return edited(item, edits) if edits else item

    def _list(self, items: list[dict[str, Any]], body: dict[str, Any], kind: str) -> Response:
        where = query.where(body)
        if not self.state.ignore_filters:
            items = [item for item in items if query.matches(item, where)]
        items = query.ordered(items, body.get("orderBy"))
        page = query.positive(body.get("page", 1), "page")
        per_page = min(
            query.positive(body.get("perPage", DEFAULT_PER_PAGE[kind]), "perPage"), MAX_PER_PAGE
        )
        if self.state.ignore_paging:
            page, per_page = 1, DEFAULT_PER_PAGE[kind]
        chunk = items[(page - 1) * per_page : page * per_page]
        return JSONResponse(
            {
                "data": [self._select(item, body) for item in chunk],
                "paging": {"perPage": per_page, "currentPage": page, "total": len(items)},
            }
        )

    def _select(self, item: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        paths = query.paths(body.get("select"))
        if not paths or self.state.ignore_select:
            return item
        projected: dict[str, Any] = query.project(item, paths)
        return projected


def _not_found(resource: str, raw_id: str) -> ApiError:
    ident: int | str = _id(raw_id) or raw_id
    return ApiError(
        404,
        "RESOURCE_NOT_FOUND",
        f'Resource "{resource}" not found',
        {"id": ident, "resource": resource},
    )


def _id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def edited(item: dict[str, Any], edits: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `item` with each dotted path set (list items by index); ValueError if a
    path does not lead into the item."""
    out = copy.deepcopy(item)
    for path, value in edits.items():
        *parents, last = path.split(".")
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.get(part)
            if not isinstance(node, dict | list):
                raise ValueError(f"{path}: {part} is not an object or a list")
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ValueError(f"{path}: {last} is not an index of the list")
            node[int(last)] = value
        else:
            node[last] = value
    return out


# -- controls ----------------------------------------------------------------------------------


def _add_controls(router: APIRouter, state: SandboxState) -> None:
    @router.get(CONTROL + "/state")
    def sandbox_state() -> dict[str, Any]:
        """Counters and switches (never the token)."""
        return {
            "orders": len(state.world.orders),
            "special_orders": state.world.special,
            "post_orders": state.post_orders,
            "calls": len(state.calls),
            "faults": [f.__dict__ for f in state.faults],
            "ignore_select": state.ignore_select,
            "ignore_filters": state.ignore_filters,
            "ignore_paging": state.ignore_paging,
        }

    @router.get(CONTROL + "/calls")
    def calls() -> list[dict[str, Any]]:
        """The API calls received, oldest first: method, path, query string, raw body."""
        return state.calls

    @router.delete(CONTROL + "/calls")
    def forget_calls() -> dict[str, int]:
        """Forget the calls received so far."""
        count = len(state.calls)
        state.calls.clear()
        return {"forgotten": count}

    @router.get(CONTROL + "/pii")
    def pii() -> dict[str, list[str]]:
        """Every e-mail, phone, name and card number served, for leak searches in tests."""
        return {"values": state.world.pii()}

    @router.post(CONTROL + "/orders/{order_id}/refund")
    def refund(order_id: int, body: RefundBody | None = None) -> dict[str, Any]:
        """Refund baskets of a paid order (all of them by default)."""
        order = _paid_order(state, order_id)
        wanted = body.basket_ids if body else None
        state.world.refund(order_id, wanted, datetime.now(_MSK))
        refunded = [b["id"] for b in order["baskets"] if b["refunded_at"] is not None]
        return {"order_id": order_id, "refunded_basket_ids": refunded}

    @router.post(CONTROL + "/orders/{order_id}/cancel")
    def cancel(order_id: int) -> dict[str, Any]:
        """Cancel (delete) an order."""
        if order_id not in state.world.orders:
            raise HTTPException(404, f"no order {order_id}")
        order = state.world.cancel(order_id, datetime.now(_MSK))
        return {"order_id": order_id, "deleted_at": order["deleted_at"]}

    @router.post(CONTROL + "/orders/{order_id}/edit")
    def edit_order(order_id: int, body: EditBody) -> dict[str, Any]:
        """Serve an order with fields changed (`{"set": {"baskets.0.price": -500}}`)."""
        return _edit(state, "orders", order_id, body.set)

    @router.post(CONTROL + "/events/{event_id}/edit")
    def edit_event(event_id: int, body: EditBody) -> dict[str, Any]:
        """Serve an event with fields changed (`{"set": {"name": …}}`)."""
        return _edit(state, "events", event_id, body.set)

    @router.post(CONTROL + "/faults")
    def add_fault(body: FaultBody) -> dict[str, Any]:
        """Make the next `count` API calls under `path` fail or stall."""
        fault = Fault(
            body.status, body.count, body.path, body.retry_after, body.delay, body.malformed
        )
        state.faults.append(fault)
        return {"pending": len(state.faults)}

    @router.delete(CONTROL + "/faults")
    def clear_faults() -> dict[str, int]:
        """Drop every pending fault."""
        count = len(state.faults)
        state.faults.clear()
        return {"cleared": count}

    @router.post(CONTROL + "/token")
    def rotate_token(body: TokenBody) -> dict[str, bool]:
        """Accept only this token from now on (the old one gets 403)."""
        state.token = body.token
        return {"rotated": True}

    @router.post(CONTROL + "/config")
    def configure(body: ConfigBody) -> dict[str, bool]:
        """Switch server-side select, filters or paging off (or back on)."""
        for name in ("ignore_select", "ignore_filters", "ignore_paging"):
            value = getattr(body, name)
            if value is not None:
                setattr(state, name, value)
        return {
            "ignore_select": state.ignore_select,
            "ignore_filters": state.ignore_filters,
            "ignore_paging": state.ignore_paging,
        }

    @router.post(CONTROL + "/reset")
    def reset() -> dict[str, int]:
        """Back to the freshly built world, token, no faults, every server behaviour on."""
        fresh = SandboxState(today=state.today, world=QticketsWorld.build(state.today))
        state.__dict__.update(fresh.__dict__)
        return {"orders": len(state.world.orders)}


def _edit(state: SandboxState, kind: str, item_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    items = state.world.orders if kind == "orders" else state.world.events
    if item_id not in items:
        raise HTTPException(404, f"no {kind[:-1]} {item_id}")
    merged = {**state.edits.get((kind, item_id), {}), **changes}
    try:
        edited(items[item_id], merged)
    except (ValueError, KeyError, IndexError) as exc:
        raise HTTPException(422, str(exc)) from exc
    state.edits[(kind, item_id)] = merged
    return {"id": item_id, "edited": sorted(merged)}


def _paid_order(state: SandboxState, order_id: int) -> dict[str, Any]:
    order = state.world.orders.get(order_id)
    if order is None:
        raise HTTPException(404, f"no order {order_id}")
    if not order["payed"]:
        raise HTTPException(409, f"order {order_id} is not paid: nothing to refund")
    return order
