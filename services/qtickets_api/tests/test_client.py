"""The client against the QTickets sandbox over real HTTP, faults injected through the sandbox."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest
from qtickets_support import MOSCOW, Sandbox, is_sale, moscow_date
from zakaz_common.errors import AuthError, PermanentError, StructuralError, TransientError
from zakaz_common.timeutil import today_msk
from zakaz_qtickets_api.client import ATTEMPTS, NotFoundError, QticketsClient
from zakaz_qtickets_api.transform import show_inventory
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN


def client(sandbox: Sandbox, **kwargs: Any) -> QticketsClient:
    return QticketsClient(sandbox.api, kwargs.pop("token", SANDBOX_TOKEN), **kwargs)


def window(days: int = 30) -> tuple[datetime, datetime]:
    today = today_msk()
    start = datetime.combine(today - timedelta(days=days - 1), dtime(0), MOSCOW)
    return start, datetime.combine(today + timedelta(days=1), dtime(0), MOSCOW)


def paid_ids(sandbox: Sandbox) -> set[int]:
    return {o["id"] for o in sandbox.orders() if o["payed"]}


def test_orders_go_as_get_with_a_json_body_never_a_query_string_or_post(
    qt_sandbox: Sandbox,
) -> None:
    with client(qt_sandbox) as qt:
        orders = list(qt.orders(*window()))

    calls = qt_sandbox.get("calls")
    assert {c["method"] for c in calls} == {"GET"}
    assert all(c["query"] == "" for c in calls)
    body = json.loads(calls[0]["body"])
    assert {"column": "payed", "value": 1} in body["where"]
    assert any(w["column"] == "payed_at" and w["operator"] == ">=" for w in body["where"])
    assert body["perPage"] == 100 and body["page"] == 1 and "baskets.price" in body["select"]
    assert qt_sandbox.get("state")["post_orders"] == 0
    assert {o["id"] for o in orders} == paid_ids(qt_sandbox)


def test_every_page_is_read_until_paging_total(qt_sandbox: Sandbox) -> None:
    total = len(paid_ids(qt_sandbox))
    qt_sandbox.forget_calls()

    with client(qt_sandbox) as qt:
        orders = list(qt.orders(*window()))

    pages = [json.loads(c["body"])["page"] for c in qt_sandbox.get("calls")]
    assert total > 100  # so that more than one page of 100 is needed
    assert pages == list(range(1, math.ceil(total / 100) + 1))
    assert len(orders) == len({o["id"] for o in orders}) == total


def test_the_payment_window_is_sent_as_moscow_midnights(qt_sandbox: Sandbox) -> None:
    late = qt_sandbox.special("late")
    late_day = moscow_date(next(o for o in qt_sandbox.orders() if o["id"] == late)["payed_at"])
    start = datetime.combine(late_day, dtime(0), MOSCOW)

    with client(qt_sandbox) as qt:
        orders = list(qt.orders(start, start + timedelta(days=1)))

    assert late in {o["id"] for o in orders}
    assert all(moscow_date(o["payed_at"]) == late_day for o in orders)


def test_a_server_that_ignores_paging_is_stopped_not_looped(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("config", {"ignore_paging": True})

    with client(qt_sandbox) as qt, pytest.raises(StructuralError, match="ignores paging"):
        list(qt.orders(*window()))

    assert len(qt_sandbox.get("calls")) == 2


def test_pii_never_leaves_the_client_even_when_the_server_ignores_select(
    qt_sandbox: Sandbox,
) -> None:
    qt_sandbox.control("config", {"ignore_select": True})
    pii = qt_sandbox.pii()
    raw = json.dumps(qt_sandbox.orders(), ensure_ascii=False)
    assert sum(p in raw for p in pii) > 100  # the server really sends it

    with client(qt_sandbox) as qt:
        text = json.dumps(list(qt.orders(*window())), ensure_ascii=False)

    assert [p for p in pii if p in text] == []
    assert "client" not in text and "payment_card_number" not in text


def test_utm_comes_out_as_five_tags_whatever_the_shape(qt_sandbox: Sandbox) -> None:
    shapes = {type(o["utm"]).__name__ for o in qt_sandbox.orders()}

    with client(qt_sandbox) as qt:
        orders = list(qt.orders(*window()))

    assert shapes == {"list", "dict"}
    assert all(len(o["utm"]) == 5 for o in orders)
    assert any(o["utm"]["utm_source"] == "" for o in orders)
    assert any(o["utm"]["utm_source"] == "yandex" for o in orders)


def test_429_is_retried_after_the_retry_after_it_names(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("faults", {"status": 429, "count": 2, "path": "/orders", "retry_after": 1})

    started = time.monotonic()
    with client(qt_sandbox) as qt:
        orders = list(qt.orders(*window()))
    elapsed = time.monotonic() - started

    assert {o["id"] for o in orders} == paid_ids(qt_sandbox)
    assert qt.stats["retries"] == 2
    # Backoff alone would wait 0.25 + 0.5 s; Retry-After says 1 s each time.
    assert elapsed >= 1.9


@pytest.mark.parametrize("status", [500, 502, 503, 504], ids=lambda s: f"http_{s}")
def test_a_5xx_is_retried(qt_sandbox: Sandbox, status: int) -> None:
    qt_sandbox.control("faults", {"status": status, "count": 1})

    with client(qt_sandbox) as qt:
        events = list(qt.events())

    assert len(events) == 8
    assert qt.stats["retries"] == 1


def test_a_broken_json_body_is_retried(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("faults", {"malformed": True, "count": 1, "path": "/events"})

    with client(qt_sandbox) as qt:
        assert len(list(qt.events())) == 8
    assert qt.stats["retries"] == 1


def test_a_lasting_5xx_fails_after_the_declared_attempts(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("faults", {"status": 503, "count": 50, "retry_after": 0})

    with client(qt_sandbox) as qt, pytest.raises(TransientError, match="503"):
        list(qt.events())

    assert qt.stats["requests"] == ATTEMPTS


def test_a_slow_answer_is_a_transient_error(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("faults", {"delay": 2, "count": 1})

    with (
        client(qt_sandbox, timeout=0.5, attempts=1) as qt,
        pytest.raises(TransientError, match=r"within 0\.5 s"),
    ):
        list(qt.events())


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param("", 401, id="missing_token_401"),
        pytest.param("wrong-token-1", 403, id="wrong_token_403"),
    ],
)
def test_a_bad_token_is_an_auth_error_naming_the_setting_not_the_token(
    qt_sandbox: Sandbox, token: str, status: int
) -> None:
    with client(qt_sandbox, token=token) as qt, pytest.raises(AuthError) as caught:
        list(qt.events())

    message = str(caught.value)
    assert f"{status}" in message and "QTICKETS_TOKEN" in message
    assert "wrong-token-1" not in message and SANDBOX_TOKEN not in message
    assert qt.stats["requests"] == 1  # not retried


def test_a_rotated_token_is_refused(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("token", {"token": "qt-new-token-42"})

    with client(qt_sandbox) as qt, pytest.raises(AuthError, match="403"):
        list(qt.events())
    with client(qt_sandbox, token="qt-new-token-42") as qt:
        assert len(list(qt.events())) == 8


def test_a_wrong_base_url_is_permanent_and_says_which_setting(qt_sandbox: Sandbox) -> None:
    with (
        QticketsClient(qt_sandbox.api + "/v2", SANDBOX_TOKEN) as qt,
        pytest.raises(PermanentError, match="QTICKETS_BASE_URL") as caught,
    ):
        list(qt.events())

    assert "HTML 404" in str(caught.value)
    assert qt.stats["requests"] == 1


def test_seats_come_flat_with_counters(qt_sandbox: Sandbox) -> None:
    with client(qt_sandbox) as qt:
        seated = qt.seats("152880")
        standing = qt.seats("152883")

    body = json.loads(qt_sandbox.get("calls")[0]["body"])
    assert body["flat"] is True and "free_quantity" in body["select"]
    assert len(seated) == 1200
    assert {s["admission"] for s in seated} == {False}
    assert [s["admission"] for s in standing] == [True, True]
    assert show_inventory(seated)[0] == 1198  # two seats of row 1 hold the sound desk
    assert show_inventory(standing)[0] == 500


def test_seats_of_an_unknown_show_are_not_found(qt_sandbox: Sandbox) -> None:
    with client(qt_sandbox) as qt, pytest.raises(NotFoundError, match="RESOURCE_NOT_FOUND"):
        qt.seats("999999")


def test_events_carry_shows_and_city_names(qt_sandbox: Sandbox) -> None:
    with client(qt_sandbox) as qt:
        events = list(qt.events())

    assert [e["id"] for e in events] == list(range(24080, 24088))
    moscow = events[0]
    assert moscow["city"] == "Москва"
    assert [s["id"] for s in moscow["shows"]] == [152880, 152890]
    body = json.loads(qt_sandbox.get("calls")[0]["body"])
    assert "city.name" in body["select"] and "shows.start_date" in body["select"]


def test_orders_ignoring_the_filters_still_page_through_everything(qt_sandbox: Sandbox) -> None:
    qt_sandbox.control("config", {"ignore_filters": True})
    everything = qt_sandbox.orders()

    with client(qt_sandbox) as qt:
        orders = list(qt.orders(*window()))

    assert len(orders) == len(everything)
    assert sum(1 for o in everything if is_sale(o)) < len(orders)
