"""The sandbox controls the fault suite breaks upstreams with: what they serve, and what not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from zakaz_common.localserver import serving
from zakaz_sandbox.app import create_app
from zakaz_sandbox.direct_data import CLIENT_LOGIN, TOKEN
from zakaz_sandbox.qtickets import CONTROL, PREFIX
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN
from zakaz_sandbox.season import reference_day, season
from zakaz_sandbox.vk_data import ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET

QT_AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
WEEK = timedelta(days=7)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A client on a fresh sandbox app served on loopback."""
    with serving(create_app()) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def qt(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = http.request("GET", PREFIX + path, json=body, headers=QT_AUTH)
    response.raise_for_status()
    return response.json()["data"]


def seat_counters(http: httpx.Client, show_id: int) -> list[Any]:
    seats = qt(http, f"/shows/{show_id}/seats", {"flat": True, "select": ["free_quantity"]})
    return sorted(seats.items())


def test_an_edited_order_is_served_changed_but_the_box_office_keeps_the_truth(
    http: httpx.Client,
) -> None:
    order = next(o for o in qt(http, "/orders", {"perPage": 1000}) if o["payed"] and o["baskets"])
    show_id = order["baskets"][0]["show_id"]
    seats = seat_counters(http, show_id)

    edit = http.post(
        f"{CONTROL}/orders/{order['id']}/edit",
        json={"set": {"baskets.0.quantity": 10**20, "utm": [1, 2]}},
    )
    listed = next(o for o in qt(http, "/orders", {"perPage": 1000}) if o["id"] == order["id"])
    single = qt(http, f"/orders/{order['id']}")

    assert edit.status_code == 200, edit.text
    assert listed["baskets"][0]["quantity"] == single["baskets"][0]["quantity"] == 10**20
    assert single["utm"] == [1, 2] and single["baskets"][1:] == order["baskets"][1:]
    assert seat_counters(http, show_id) == seats

    shape = http.post(f"{CONTROL}/orders/{order['id']}/edit", json={"set": {"baskets": {}}})
    assert shape.status_code == 200 and qt(http, f"/orders/{order['id']}")["baskets"] == {}

    http.post(f"{CONTROL}/reset").raise_for_status()
    assert qt(http, f"/orders/{order['id']}") == order


def test_an_edit_that_leads_nowhere_is_refused(http: httpx.Client) -> None:
    order = qt(http, "/orders", {"perPage": 1})[0]

    into_a_number = http.post(f"{CONTROL}/orders/{order['id']}/edit", json={"set": {"id.x": 1}})
    past_the_list = http.post(
        f"{CONTROL}/orders/{order['id']}/edit", json={"set": {"baskets.99": 1}}
    )
    no_order = http.post(f"{CONTROL}/orders/1/edit", json={"set": {"id": 2}})

    assert into_a_number.status_code == past_the_list.status_code == 422
    assert no_order.status_code == 404
    assert qt(http, f"/orders/{order['id']}") == order


def test_an_edited_event_name_is_served_in_lists_and_alone(http: httpx.Client) -> None:
    event = qt(http, "/events")[0]

    http.post(
        f"{CONTROL}/events/{event['id']}/edit", json={"set": {"name": "Шоу\x00\x07"}}
    ).raise_for_status()

    assert qt(http, f"/events/{event['id']}")["name"] == "Шоу\x00\x07"
    assert next(e for e in qt(http, "/events") if e["id"] == event["id"])["name"] == "Шоу\x00\x07"


def vk_auth(http: httpx.Client) -> dict[str, str]:
    token = http.post(
        "/api/v2/oauth2/token.json",
        data={
            "grant_type": "client_credentials",
            "client_id": ADVERTISER_CLIENT_ID,
            "client_secret": ADVERTISER_CLIENT_SECRET,
        },
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_a_renamed_vk_ad_plan_is_served_with_its_new_name(http: httpx.Client) -> None:
    auth = vk_auth(http)
    plan = http.get("/api/v2/ad_plans.json", params={"limit": 1}, headers=auth).json()["items"][0]

    renamed = http.post(
        "/_sandbox/vk/rename", json={"kind": "ad_plans", "id": plan["id"], "name": "План\x07"}
    )
    served = http.get(
        "/api/v2/ad_plans.json", params={"_id": plan["id"], "fields": "id,name"}, headers=auth
    ).json()["items"]
    unknown = http.post("/_sandbox/vk/rename", json={"kind": "ad_groups", "id": 1, "name": "x"})

    assert renamed.status_code == 200 and renamed.json()["old_name"] == plan["name"]
    assert served == [{"id": plan["id"], "name": "План\x07"}]
    assert unknown.status_code == 404


def test_a_renamed_direct_campaign_is_served_with_its_new_name(http: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Client-Login": CLIENT_LOGIN}
    query = {"method": "get", "params": {"SelectionCriteria": {}, "FieldNames": ["Id", "Name"]}}

    def names() -> dict[int, str]:
        answer = http.post("/json/v5/campaigns", json=query, headers=headers).json()
        return {c["Id"]: c["Name"] for c in answer["result"]["Campaigns"]}

    before = names()
    first = min(before)
    renamed = http.post("/_sandbox/direct/rename", json={"campaign_id": first, "name": "К\x00"})

    assert renamed.status_code == 200 and renamed.json()["old_name"] == before[first]
    assert names() == {**before, first: "К\x00"}


def test_a_malformed_banner_gets_its_statistics_rows_as_an_object(http: httpx.Client) -> None:
    auth = vk_auth(http)
    banners = http.get("/api/v2/banners.json", params={"limit": 2}, headers=auth).json()["items"]
    ids = [b["id"] for b in banners]

    def stats() -> dict[int, Any]:
        answer = http.get(
            "/api/v2/statistics/banners/day.json",
            params={"id": ",".join(map(str, ids)), "date_from": str(reference_day() - WEEK)},
            headers=auth,
        )
        answer.raise_for_status()
        return {item["id"]: item["rows"] for item in answer.json()["items"]}

    http.post("/_sandbox/vk/malform", json={"banner_ids": [ids[0]]}).raise_for_status()
    spoilt = stats()
    http.post("/_sandbox/vk/malform", json={"banner_ids": []}).raise_for_status()
    mended = stats()

    assert isinstance(spoilt[ids[0]], dict) and isinstance(spoilt[ids[1]], list)
    assert list(spoilt[ids[0]].values()) == mended[ids[0]]
    assert all(isinstance(rows, list) for rows in mended.values())


def test_a_report_row_may_carry_the_name_it_was_typed_with(http: httpx.Client) -> None:
    show = season()[0]
    mail = http.post(
        "/_sandbox/gmail/messages",
        json={
            "sale_date": str(reference_day() - WEEK),
            "rows": [
                {
                    "event_id": show.event_id,
                    "tickets_sold": 2,
                    "revenue": "100",
                    "event_name": "Имя\x07",
                }
            ],
        },
    )

    assert mail.status_code == 200, mail.text
    assert [s["event_name"] for s in mail.json()["sales"]] == ["Имя\x07"]
