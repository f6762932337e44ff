"""The QTickets sandbox itself, over real HTTP: the API's documented shapes, limits and errors."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from fastapi import FastAPI
from qtickets_support import MOSCOW, Sandbox, live_baskets
from zakaz_common.testing import serving
from zakaz_sandbox.qtickets import create_router
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN, QticketsWorld

PII_BASKET_KEYS = {"client_email", "client_phone", "client_name", "client_surname"}


def test_default_page_sizes_and_query_strings_ignored(qt_sandbox: Sandbox) -> None:
    orders = qt_sandbox.call("/orders?payed=1&per_page=200&page=3").json()
    events = qt_sandbox.call("/events").json()

    assert orders["paging"]["perPage"] == 50 and len(orders["data"]) == 50
    assert orders["paging"]["currentPage"] == 1
    assert orders["paging"]["total"] > 200
    assert [o["id"] for o in orders["data"]] == sorted(o["id"] for o in orders["data"])
    assert any(not o["payed"] for o in orders["data"])  # the query filter did nothing
    assert (events["paging"]["perPage"], len(events["data"]), events["paging"]["total"]) == (
        10,
        8,
        8,
    )


def test_where_operators_order_by_and_paging_in_the_body(qt_sandbox: Sandbox) -> None:
    since = "2000-01-01T00:00:00+03:00"
    body = {
        "where": [
            {"column": "payed", "value": 1},
            {"column": "payed_at", "operator": ">=", "value": since},
            {"column": "deleted_at", "operator": "null"},
            {"column": "event_id", "operator": "in", "value": [24080, "24081"]},
        ],
        "orderBy": {"payed_at": "desc"},
        "perPage": 5,
        "page": 2,
    }
    page = qt_sandbox.call("/orders", body).json()
    everything = qt_sandbox.orders()

    wanted = [
        o
        for o in everything
        if o["payed"] and o["deleted_at"] is None and str(o["event_id"]) in {"24080", "24081"}
    ]
    wanted.sort(key=lambda o: datetime.fromisoformat(o["payed_at"]), reverse=True)
    assert page["paging"] == {"perPage": 5, "currentPage": 2, "total": len(wanted)}
    assert [o["id"] for o in page["data"]] == [o["id"] for o in wanted[5:10]]


def test_a_date_filter_compares_moments_across_offsets(qt_sandbox: Sandbox) -> None:
    late_id = qt_sandbox.special("late")
    late = next(o for o in qt_sandbox.orders() if o["id"] == late_id)
    moscow_day = datetime.fromisoformat(late["payed_at"]).astimezone(MOSCOW).date()
    body = {
        "where": [
            {"column": "payed_at", "operator": ">=", "value": f"{moscow_day}T00:00:00+03:00"},
            {"column": "id", "value": late_id},
        ]
    }

    assert [o["id"] for o in qt_sandbox.call("/orders", body).json()["data"]] == [late_id]


def test_not_null_and_not_in(qt_sandbox: Sandbox) -> None:
    cancelled = qt_sandbox.call(
        "/orders",
        {"where": [{"column": "deleted_at", "operator": "not null"}], "perPage": 1000},
    ).json()["data"]
    others = qt_sandbox.call(
        "/events", {"where": [{"column": "id", "operator": "not in", "value": [24080]}]}
    ).json()["data"]

    assert cancelled and all(o["deleted_at"] for o in cancelled)
    assert [e["id"] for e in others] == list(range(24081, 24088))


def test_select_with_dot_paths(qt_sandbox: Sandbox) -> None:
    body = {"select": ["id", "baskets.price", "city.name"], "perPage": 1}
    order = qt_sandbox.call("/orders", body).json()["data"][0]
    event = qt_sandbox.call("/events", body).json()["data"][0]

    assert set(order) == {"id", "baskets"} and all(set(b) == {"price"} for b in order["baskets"])
    assert event == {"id": 24080, "city": {"name": "Москва"}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"where": [{"column": "id", "operator": "~", "value": 1}]},
            "Unknown operator",
            id="bad_operator",
        ),
        pytest.param(
            {"where": [{"column": "nope", "value": 1}]}, "Unknown column", id="bad_column"
        ),
        pytest.param({"where": {"column": "id"}}, "list of conditions", id="where_not_a_list"),
        pytest.param({"orderBy": {"id": "up"}}, "asc or desc", id="bad_direction"),
        pytest.param({"perPage": 0}, "positive integer", id="per_page_zero"),
        pytest.param({"select": "id"}, "list of field names", id="select_not_a_list"),
    ],
)
def test_bad_bodies_get_a_400_json_error(
    qt_sandbox: Sandbox, body: dict[str, object], message: str
) -> None:
    response = qt_sandbox.call("/orders", body)

    assert response.status_code == 400
    assert message in response.json()["error"] and response.json()["status"] == 400


def test_one_order_one_event_and_the_404_shape(qt_sandbox: Sandbox) -> None:
    order_id = qt_sandbox.orders()[0]["id"]

    assert qt_sandbox.call(f"/orders/{order_id}").json()["data"]["id"] == order_id
    assert (
        qt_sandbox.call("/events/24082").json()["data"]["city"]["timezone"] == "Asia/Yekaterinburg"
    )
    missing = qt_sandbox.call("/orders/999999999")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": 'Resource "Order" not found',
        "status": 404,
        "code": "RESOURCE_NOT_FOUND",
        "info": {"id": 999999999, "resource": "Order"},
    }


@pytest.mark.parametrize("path", ["/events/24080/seats", "/clients/export", "/v2/orders"])
def test_unknown_paths_get_the_sites_html_404(qt_sandbox: Sandbox, path: str) -> None:
    response = qt_sandbox.call(path)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Страница не найдена" in response.text


def test_post_orders_answers_503_and_creates_nothing(qt_sandbox: Sandbox) -> None:
    before = len(qt_sandbox.orders())

    response = qt_sandbox.call(
        "/orders", {"where": [{"column": "payed", "value": 1}]}, method="POST"
    )

    assert response.status_code == 503
    assert response.json() == {
        "error": "Unknown error",
        "status": 503,
        "code": "UNKNOWN_ERROR",
        "info": [],
    }
    assert len(qt_sandbox.orders()) == before
    assert qt_sandbox.get("state")["post_orders"] == 1


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        pytest.param({}, 401, "UNAUTHORIZED", id="no_header"),
        pytest.param(
            {"Authorization": "Token " + SANDBOX_TOKEN}, 401, "UNAUTHORIZED", id="not_bearer"
        ),
        pytest.param({"Authorization": "Bearer nope"}, 403, "ACCESS_DENIED", id="wrong_token"),
    ],
)
def test_auth_errors(qt_sandbox: Sandbox, headers: dict[str, str], status: int, code: str) -> None:
    response = qt_sandbox.call("/events", headers=headers)

    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["status"] == status


def test_seats_flat_object_or_zone_tree(qt_sandbox: Sandbox) -> None:
    flat = qt_sandbox.call(
        "/shows/152880/seats", {"select": ["id", "max_quantity", "disabled"], "flat": True}
    ).json()["data"]
    tree = qt_sandbox.call("/shows/152880/seats").json()["data"]
    standing = qt_sandbox.call("/shows/152883/seats", {"flat": True}).json()["data"]

    assert flat["full_PARTERRE-1;1"] == {
        "id": "full_PARTERRE-1;1",
        "max_quantity": 1,
        "disabled": True,
    }
    assert set(tree) == {"full_PARTERRE", "full_BALCONY"}
    assert tree["full_PARTERRE"]["seats"]["5;12"] == {
        "seat_id": "PARTERRE-5;12",
        "admission": False,
    }
    assert set(standing) == {"full_DANCE-1;1", "full_VIP-1;1"}
    dance = standing["full_DANCE-1;1"]
    assert dance["admission"] is True and dance["max_quantity"] == 460
    assert dance["free_quantity"] + dance["payed_quantity"] + dance["in_basket_quantity"] == 460
    assert qt_sandbox.call("/shows/152891/seats").status_code == 404  # the deleted show


def test_a_refund_frees_its_seats(qt_sandbox: Sandbox) -> None:
    order = next(
        o
        for o in qt_sandbox.orders()
        if o["payed"]
        and o["deleted_at"] is None
        and o["event_id"]
        and str(o["event_id"]) == "24080"
        and len(live_baskets(o)) >= 1
    )
    seat_id = "full_" + live_baskets(order)[0]["seat_id"]
    show = live_baskets(order)[0]["show_id"]
    before = qt_sandbox.call(f"/shows/{show}/seats", {"flat": True}).json()["data"][seat_id]

    qt_sandbox.control(f"orders/{order['id']}/refund")

    after = qt_sandbox.call(f"/shows/{show}/seats", {"flat": True}).json()["data"][seat_id]
    refunded = qt_sandbox.call(f"/orders/{order['id']}").json()["data"]
    assert (before["free_quantity"], before["available"]) == (0, False)
    assert (after["free_quantity"], after["available"]) == (1, True)
    assert all(b["refunded_at"] for b in refunded["baskets"])
    assert refunded["baskets"][0]["refunded_amount"] == refunded["baskets"][0]["price"]


def test_the_data_looks_like_a_real_organisers(qt_sandbox: Sandbox) -> None:
    orders = qt_sandbox.orders()
    paid = [o for o in orders if o["payed"]]

    assert {type(o["utm"]).__name__ for o in orders} == {"list", "dict"}
    assert "" in {o["custom"] if isinstance(o["custom"], str) else "" for o in orders}
    assert {type(o["event_id"]).__name__ for o in paid} >= {"int", "str"}
    assert any(o["event_id"] is None for o in paid)  # a gift certificate
    assert any(not o["payed"] and o["deleted_at"] for o in orders)  # cancelled
    assert any(not o["payed"] and not o["deleted_at"] for o in orders)  # awaiting payment
    assert any(o["payed"] and o["deleted_at"] for o in orders)  # cancelled after payment
    assert any(b["refunded_at"] for o in paid for b in o["baskets"])
    assert any("+00:00" in o["payed_at"] for o in paid)
    assert all(o["payed_at"].endswith(("+03:00", "+00:00")) for o in paid)
    assert any(isinstance(b["price"], float) for o in paid for b in o["baskets"])  # kopecks
    assert all(set(b) >= PII_BASKET_KEYS for o in orders for b in o["baskets"])
    assert all("*" * 6 in o["payment_card_number"] for o in orders)
    names = {b["client_name"] for o in orders for b in o["baskets"]}
    assert any("ё" in n for n in names | {o["client"]["details"]["surname"] for o in orders})
    assert sum(Decimal(str(b["price"])) for o in paid for b in o["baskets"]) > 0


def test_the_same_day_gives_the_same_world_and_routers_do_not_share_state() -> None:
    day = date(2025, 6, 10)
    first, second = QticketsWorld.build(day), QticketsWorld.build(day)
    assert json.dumps(first.orders, sort_keys=True) == json.dumps(second.orders, sort_keys=True)

    app_a, app_b = FastAPI(), FastAPI()
    app_a.include_router(create_router(today=day))
    app_b.include_router(create_router(today=day))
    with serving(app_a) as url_a, serving(app_b) as url_b:
        a, b = Sandbox(url_a), Sandbox(url_b)
        order = next(o for o in a.orders() if o["payed"] and live_baskets(o))
        a.control(f"orders/{order['id']}/refund")
        refunded_b = next(o for o in b.orders() if o["id"] == order["id"])
        assert live_baskets(refunded_b) == live_baskets(order)
        assert min(datetime.fromisoformat(o["created_at"]).date() for o in a.orders()) == date(
            2025, 5, 21
        )
        a.http.close()
        b.http.close()


def test_injected_faults_and_reset(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("faults", {"status": 429, "count": 1, "retry_after": 3})
    qt_sandbox.control("faults", {"status": 502, "count": 1, "path": "/events"})

    limited = qt_sandbox.call("/orders")
    gateway = qt_sandbox.call("/events")

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert limited.json()["code"] == "TOO_MANY_REQUESTS"
    assert gateway.status_code == 502 and "nginx" in gateway.text
    assert qt_sandbox.call("/events").status_code == 200
    qt_sandbox.control("token", {"token": "new"})
    assert qt_sandbox.call("/events").status_code == 403
    qt_sandbox.control("reset")
    assert qt_sandbox.call("/events").status_code == 200
