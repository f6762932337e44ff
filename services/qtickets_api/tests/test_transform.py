"""Pure transform and PII boundary: QTickets records → rows, skips and rejects, ugly cases named."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.load import Reject
from zakaz_common.redact import scrub
from zakaz_qtickets_api.privacy import safe_event, safe_order, safe_utm, safe_value
from zakaz_qtickets_api.transform import (
    EventInfo,
    Sale,
    Skip,
    read_event,
    read_order,
    sales_row,
    show_inventory,
    utm_row,
)

NO_UTM = ("", "", "", "", "")


def basket(price: Any = 1500, quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"id": 1, "show_id": 152880, "price": price, "quantity": quantity} | {
        "deleted_at": None,
        "refunded_at": None,
        **extra,
    }


def order(*baskets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    base = {
        "id": 2051187,
        "payed": True,
        "payed_at": "2025-06-03T14:22:10+03:00",
        "deleted_at": None,
        "event_id": 24089,
        "utm": {k: "" for k in ("utm_source", "utm_medium", "utm_campaign", "utm_content")}
        | {"utm_term": ""},
        "baskets": list(baskets) or [basket()],
    }
    return base | extra


JUNE_3 = date(2025, 6, 3)

ORDER_CASES = [
    pytest.param(
        order(), Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM), id="paid"
    ),
    pytest.param(order(payed=False, payed_at=None), Skip("unpaid"), id="unpaid"),
    pytest.param(order(payed=None, payed_at=None), Skip("unpaid"), id="payed_null"),
    pytest.param(
        order(payed=1),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM),
        id="payed_as_1",
    ),
    pytest.param(
        order(payed="1"),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM),
        id="payed_as_string_1",
    ),
    pytest.param(order(payed="0"), Skip("unpaid"), id="payed_as_string_0"),
    pytest.param(
        order(deleted_at="2025-06-04T10:00:00+03:00"), Skip("cancelled"), id="paid_then_cancelled"
    ),
    pytest.param(
        order(deleted_at=""),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM),
        id="deleted_at_empty_string_is_live",
    ),
    pytest.param(
        order(basket(900), basket(900, refunded_at="2025-06-04T10:00:00+03:00")),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("900.00"), NO_UTM),
        id="one_basket_refunded",
    ),
    pytest.param(
        order(basket(900), basket(900, deleted_at="2025-06-03T14:30:00+03:00")),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("900.00"), NO_UTM),
        id="one_basket_deleted",
    ),
    pytest.param(
        order(basket(refunded_at="2025-06-04T10:00:00+03:00")), Skip("refunded"), id="all_refunded"
    ),
    pytest.param(order(baskets=[]), Skip("refunded"), id="no_baskets"),
    pytest.param(
        order(payed_at="2025-06-02T23:30:00+00:00"),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM),
        id="paid_2330_utc_is_next_moscow_day",
    ),
    pytest.param(
        order(payed_at="2025-06-03T20:59:59Z"),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM),
        id="z_suffix_just_before_moscow_midnight",
    ),
    pytest.param(
        order(payed_at="2025-06-03T00:30:00+07:00"),
        Sale("2051187", date(2025, 6, 2), "24089", 1, Decimal("1500.00"), NO_UTM),
        id="novosibirsk_offset_is_previous_moscow_day",
    ),
    pytest.param(
        order(payed_at="2025-06-03 23:50:00"),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM),
        id="naive_timestamp_is_moscow_wall_time",
    ),
    pytest.param(
        order(event_id="24089"),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), NO_UTM),
        id="event_id_as_string",
    ),
    pytest.param(
        order(basket(2000, 2)),
        Sale("2051187", JUNE_3, "24089", 2, Decimal("2000.00"), NO_UTM),
        id="quantity_2_price_is_the_baskets",
    ),
    pytest.param(
        order(basket(1666.67), basket(1000)),
        Sale("2051187", JUNE_3, "24089", 2, Decimal("2666.67"), NO_UTM),
        id="kopecks_from_a_float",
    ),
    pytest.param(
        order(basket("1 500,50")),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.50"), NO_UTM),
        id="price_as_russian_text",
    ),
    pytest.param(
        order(basket(0)),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("0.00"), NO_UTM),
        id="invitation_at_zero",
    ),
    pytest.param(
        order(utm={"utm_source": "vk", "utm_medium": "cpc", "utm_content": "msk_14_12"}),
        Sale("2051187", JUNE_3, "24089", 1, Decimal("1500.00"), ("vk", "cpc", "", "msk_14_12", "")),
        id="utm_partial_object",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), ORDER_CASES)
def test_read_order(raw: dict[str, Any], expected: Sale | Skip) -> None:
    assert read_order(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(order(event_id=None), "no event_id", id="gift_certificate_no_event"),
        pytest.param(order(event_id="24089a"), "is not an id", id="event_id_junk"),
        pytest.param(order(payed_at=None), "without payed_at", id="paid_without_payed_at"),
        pytest.param(
            order(payed_at="0000-00-00 00:00:00"), "without payed_at", id="mysql_zero_date"
        ),
        pytest.param(order(payed_at="03/06/2025"), "unknown date format", id="payed_at_junk"),
        pytest.param(order(payed="yes"), "not a boolean", id="payed_junk"),
        pytest.param(order(baskets="<dict>"), "not a list", id="baskets_not_a_list"),
        pytest.param(order(basket(None)), "empty number", id="price_null"),
        pytest.param(order(basket(1500, 1.5)), "not a whole number", id="quantity_fraction"),
        pytest.param(order(basket(-100)), "negative", id="negative_price"),
    ],
)
def test_unreadable_orders_are_rejected_with_a_reason(raw: dict[str, Any], reason: str) -> None:
    found = read_order(raw)

    assert isinstance(found, Reject)
    assert found.entity == "orders"
    assert reason in found.reason
    assert "2051187" in found.reason
    assert found.raw == raw


def test_sales_and_utm_rows_carry_the_event_and_tags() -> None:
    sale = Sale("1", JUNE_3, "24089", 2, Decimal("2666.67"), ("vk", "cpc", "", "nnov_14_12", ""))
    event = EventInfo("24089", "Квартирник", date(2025, 6, 20), "нижний новгород", ("1",))

    assert sales_row(sale, event) == {
        "source": "qtickets_api",
        "sale_date": JUNE_3,
        "event_id": "24089",
        "event_name": "Квартирник",
        "city": "нижний новгород",
        "tickets_sold": 2,
        "revenue": Decimal("2666.67"),
    }
    assert sales_row(sale, None)["city"] == ""
    assert utm_row(sale) == {
        "source": "qtickets_api",
        "sale_date": JUNE_3,
        "event_id": "24089",
        "tickets_sold": 2,
        "revenue": Decimal("2666.67"),
        "utm_source": "vk",
        "utm_medium": "cpc",
        "utm_campaign": "",
        "utm_content": "nnov_14_12",
        "utm_term": "",
    }


def show(show_id: int, start: str | None, deleted: str | None = None) -> dict[str, Any]:
    return {"id": show_id, "start_date": start, "is_active": 1, "deleted_at": deleted}


def event(city: Any = "Москва", *shows: dict[str, Any], **extra: Any) -> dict[str, Any]:
    listed = list(shows) or [show(152880, "2025-12-14T19:00:00+03:00")]
    return {"id": 24080, "name": "Стендап ", "city": city, "shows": listed} | extra


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            event(),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "москва", ("152880",)),
            id="one_show",
        ),
        pytest.param(
            event(
                "Москва",
                show(152890, "2025-12-15T19:00:00+03:00"),
                show(152880, "2025-12-14T19:00:00+03:00"),
            ),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "москва", ("152890", "152880")),
            id="earliest_of_two_shows",
        ),
        pytest.param(
            event(
                "Казань",
                show(152883, "2025-12-14T19:00:00+03:00"),
                show(152891, "2025-12-07T19:00:00+03:00", deleted="2025-11-20T10:00:00+03:00"),
            ),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "казань", ("152883",)),
            id="deleted_show_ignored",
        ),
        pytest.param(
            event("Новосибирск", show(152884, "2025-12-15T01:00:00+07:00")),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "новосибирск", ("152884",)),
            id="local_offset_read_in_moscow_time",
        ),
        pytest.param(
            event("москва\u00a0 "),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "москва", ("152880",)),
            id="city_with_nbsp_and_trailing_space",
        ),
        pytest.param(
            event("Питер"),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "санкт-петербург", ("152880",)),
            id="city_alias",
        ),
        pytest.param(
            event("Зелёноград-на-Марсе"),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "зеленоград-на-марсе", ("152880",)),
            id="unknown_city_normalised",
        ),
        pytest.param(
            event(None),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "", ("152880",)),
            id="no_city",
        ),
        pytest.param(
            {"id": "24080", "name": "Черновик", "city": "Москва", "shows": []},
            EventInfo("24080", "Черновик", None, "москва", ()),
            id="no_shows_no_date",
        ),
        pytest.param(
            event(deleted_at="2025-11-01T00:00:00+03:00"),
            EventInfo("24080", "Стендап", date(2025, 12, 14), "москва", ("152880",), deleted=True),
            id="deleted_event",
        ),
    ],
)
def test_read_event(raw: dict[str, Any], expected: EventInfo) -> None:
    assert read_event(raw, CityDirectory.bundled()) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(event(id=None), "no id", id="no_id"),
        pytest.param(event(shows="<dict>"), "not a list", id="shows_not_a_list"),
        pytest.param(event("Москва", show(1, "скоро")), "unknown date format", id="bad_start"),
    ],
)
def test_unreadable_events_are_rejected(raw: dict[str, Any], reason: str) -> None:
    found = read_event(raw, CityDirectory.bundled())

    assert isinstance(found, Reject) and found.entity == "events" and reason in found.reason


def seat(
    max_q: int = 1, free: int = 1, *, available: Any = True, disabled: Any = False
) -> dict[str, Any]:
    return {
        "max_quantity": max_q,
        "free_quantity": free,
        "available": available,
        "disabled": disabled,
    }


@pytest.mark.parametrize(
    ("seats", "expected"),
    [
        pytest.param([seat(), seat(free=0, available=False)], (2, 1), id="seated_one_sold"),
        pytest.param([seat(disabled=True), seat()], (1, 1), id="disabled_seat_not_counted"),
        pytest.param(
            [seat(available=False)], (1, 0), id="unavailable_free_seat_not_left"
        ),  # held by the organiser
        pytest.param([seat(200, 57), seat(40, 40)], (240, 97), id="general_admission_zones"),
        pytest.param([seat(200, 0, available=False)], (200, 0), id="general_admission_sold_out"),
        pytest.param([seat(50, 50, disabled=1)], (0, 0), id="disabled_zone_as_1"),
        pytest.param([], (0, 0), id="no_seats"),
    ],
)
def test_show_inventory(seats: list[dict[str, Any]], expected: tuple[int, int]) -> None:
    assert show_inventory(seats) == expected


def test_seats_without_counters_are_an_error() -> None:
    with pytest.raises(BadValue, match="select/flat"):
        show_inventory([{"seat_id": "1;1", "admission": True}])


PII_ORDER = {
    "id": 2051187,
    "uniqid": "Qk3xA9pL2m",
    "payed": True,
    "payed_at": "2025-06-03T14:22:10+03:00",
    "deleted_at": None,
    "event_id": 24089,
    "client": {
        "id": 1180042,
        "email": "buyer@example.ru",
        "details": {"name": "Анна", "surname": "Смирнова", "phone": "+79990001122"},
    },
    "payment_card_number": "220220******6407",
    "payment_url": "https://qtickets.ru/pay/Qk3xA9pL2m",
    "custom": {"Как вас зовут": "Анна Смирнова"},
    "fields": [],
    "utm": [],
    "baskets": [
        {
            "id": 12572925,
            "show_id": 152887,
            "price": 900,
            "quantity": 1,
            "client_email": "buyer@example.ru",
            "client_phone": "+79990001122",
            "client_name": "Анна",
            "client_surname": "Смирнова",
            "client_middlename": None,
            "comment": "позвоните мне +7 999 000-11-22",
            "deleted_at": None,
            "refunded_at": None,
        }
    ],
}


def test_safe_order_keeps_what_a_sale_needs_and_nothing_about_the_buyer() -> None:
    safe = safe_order(PII_ORDER)
    text = json.dumps(safe, ensure_ascii=False)

    for secret in ("buyer@example.ru", "+79990001122", "Анна", "Смирнова", "220220", "Qk3xA9pL2m"):
        assert secret not in text
    assert set(safe) == {"id", "payed", "payed_at", "deleted_at", "event_id", "utm", "baskets"}
    assert safe["baskets"] == [
        {
            "id": 12572925,
            "show_id": 152887,
            "price": 900,
            "quantity": 1,
            "deleted_at": None,
            "refunded_at": None,
        }
    ]
    assert read_order(safe) == Sale("2051187", JUNE_3, "24089", 1, Decimal("900.00"), NO_UTM)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param([], NO_UTM, id="empty_list_php"),
        pytest.param("", NO_UTM, id="empty_string"),
        pytest.param(None, NO_UTM, id="null"),
        pytest.param({}, NO_UTM, id="empty_object"),
        pytest.param(
            {"utm_source": "yandex", "utm_campaign": 62384014, "utm_content": "10766679603"},
            ("yandex", "", "62384014", "10766679603", ""),
            id="numeric_direct_ids_kept",
        ),
        pytest.param(
            {"utm_source": " vk ", "utm_term": "концерт\u00a0 спб", "roistat": "1"},
            ("vk", "", "", "", "концерт спб"),
            id="whitespace_and_unknown_keys",
        ),
        pytest.param(
            "utm_source=vk&utm_medium=cpc&utm_content=msk_14_12",
            ("vk", "cpc", "", "msk_14_12", ""),
            id="query_string",
        ),
        pytest.param(
            {"utm_source": "email", "utm_term": "anna.smirnova@mail.ru"},
            ("email", "", "", "", ""),
            id="email_in_a_tag_dropped",
        ),
    ],
)
def test_safe_utm(raw: Any, expected: tuple[str, ...]) -> None:
    tags = safe_utm(raw)

    assert tuple(tags.values()) == expected
    assert list(tags) == ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"]


def test_safe_event_keeps_the_city_name_and_shows_only() -> None:
    raw = {
        "id": 24080,
        "name": "Стендап",
        "city": {"id": 1, "name": "Москва", "timezone": "Europe/Moscow"},
        "description": "<p>много текста</p>",
        "shows": [{"id": 1, "start_date": "2025-12-14T19:00:00+03:00", "prices": [{"id": 9}]}],
    }

    assert safe_event(raw) == {
        "id": 24080,
        "name": "Стендап",
        "city": "Москва",
        "shows": [{"id": 1, "start_date": "2025-12-14T19:00:00+03:00"}],
    }


def test_nested_values_in_whitelisted_fields_become_their_kind() -> None:
    safe = safe_order({"id": 1, "payed": True, "event_id": {"name": "Анна"}, "baskets": {"a": 1}})

    assert safe["event_id"] == "<dict>"
    assert safe["baskets"] == "<dict>"
    assert "Анна" not in json.dumps(safe, ensure_ascii=False)


def test_a_utc_datetime_object_is_fine_too() -> None:
    raw = order(payed_at=datetime(2025, 6, 2, 23, 30, tzinfo=UTC).isoformat())

    found = read_order(raw)

    assert isinstance(found, Sale) and found.sale_date == JUNE_3


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "150001",
        "999999999",
        "2026-09-21",
        "2026-09-21T05:29:32+00:00",
        "2026-09-21 05:29:32+03:00",
        "2026-09-21T05:29:32.123456Z",
        "7888-08-08T08:08:08+08:00",
        "8123-07-07 07:07",
    ],
)
def test_plain_ids_and_timestamps_pass_unchanged_and_scrubbing_would_not_change_them(
    text: str,
) -> None:
    assert safe_value(text) == text == scrub(text)


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("79990001122", "79990001122"),
        ("1234567890", "1234567890"),
        ("buyer@example.ru", "buyer@example.ru"),
        ("2026-09-21 +7 999 000-11-22", "000-11-22"),
        ("220220******6407", "6407"),
    ],
)
def test_anything_else_is_scrubbed(text: str, leak: str) -> None:
    assert leak not in safe_value(text)


API_KEY = {"source": "qtickets_api", "sale_date": JUNE_3, "event_id": "24089"}
SALES_FACTS = ("fact_qtickets_sales_daily", "fact_qtickets_sales_utm_daily")
NO_UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


@pytest.mark.parametrize(
    ("raw", "reason", "key"),
    [
        pytest.param(
            order(basket(quantity=10**20)),
            "quantity: out of range for Int64: '100000000000000000000'",
            API_KEY,
            id="quantity_10**20",
        ),
        pytest.param(
            order(basket(quantity="99999999999999999999")),
            "quantity: out of range for Int64",
            API_KEY,
            id="quantity_20_nines",
        ),
        pytest.param(
            order(basket(quantity=2**62), basket(quantity=2**62)),
            "tickets_sold: the total",
            API_KEY,
            id="tickets_total_over_int64",
        ),
        pytest.param(order(basket(1e300)), "price: number too large", API_KEY, id="price_1e300"),
        pytest.param(
            order(basket("9" * (10 << 20))), "price: too long for a number", API_KEY, id="10_MB"
        ),
        pytest.param(order(basket(quantity=-5)), "quantity: cannot be negative", API_KEY, id="-5"),
        pytest.param(order(basket("-100")), "price: cannot be negative", API_KEY, id="-100"),
        pytest.param(
            order(basket(quantity="1,5")), "quantity: not a whole number", API_KEY, id="1,5"
        ),
        pytest.param(order(basket(float("nan"))), "price: not a finite number", API_KEY, id="NaN"),
        pytest.param(order(basket(float("inf"))), "price: not a finite", API_KEY, id="Infinity"),
        pytest.param(
            order(basket(quantity=True)), "quantity: not a whole number", API_KEY, id="bool"
        ),
        pytest.param(
            order(baskets={"1": basket()}), "baskets is \"{'1'", API_KEY, id="baskets_as_an_object"
        ),
        pytest.param(order(utm=["vk"]), "utm is \"['vk']\", not an object", API_KEY, id="utm_list"),
        pytest.param(
            order(utm={"utm_source": "24080\x00\x1b[31m"}),
            "utm_source: control character U+0000",
            API_KEY,
            id="utm_control_chars",
        ),
        pytest.param(
            order(utm={"utm_term": {"a": 1}}), "utm_term: not text: dict", API_KEY, id="utm_object"
        ),
        pytest.param(
            order(event_id="24080\x00\x1b[31m"),
            "event_id '24080\\x00\\x1b[31m' is not an id",
            {"source": "qtickets_api", "sale_date": JUNE_3},
            id="event_id_control_chars",
        ),
        pytest.param(
            order(event_id="²"),
            "event_id '²' is not an id",
            {"source": "qtickets_api", "sale_date": JUNE_3},
            id="event_id_superscript",
        ),
        pytest.param(
            order(payed_at="9" * (10 << 20)),
            "payed_at: too long for a date",
            {"source": "qtickets_api", "event_id": "24089"},
            id="payed_at_10_MB",
        ),
    ],
)
def test_ugly_orders_are_rejects_naming_the_field_with_key_and_facts(
    raw: dict[str, Any], reason: str, key: dict[str, Any]
) -> None:
    found = read_order(raw)

    assert isinstance(found, Reject)
    assert found.reason.startswith(f"order '2051187': {reason}")
    assert {c: v for c, v in (found.key or {}).items() if c not in NO_UTM_COLUMNS} == key
    assert found.facts == SALES_FACTS


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        pytest.param(
            order(basket(price=-500)), dict.fromkeys(NO_UTM_COLUMNS, ""), id="no_tags_all_read"
        ),
        pytest.param(
            order(basket(quantity=10**20), utm={"utm_source": "vk", "utm_content": "msk_12_12"}),
            dict.fromkeys(NO_UTM_COLUMNS, "") | {"utm_source": "vk", "utm_content": "msk_12_12"},
            id="tags_read",
        ),
        pytest.param(order(utm=["vk"]), {}, id="utm_list_none_read"),
        pytest.param(
            order(utm={"utm_term": {"a": 1}}),
            {c: "" for c in NO_UTM_COLUMNS if c != "utm_term"},
            id="utm_term_unreadable",
        ),
    ],
)
def test_a_rejected_order_keys_its_utm_tags_where_they_read(
    raw: dict[str, Any], tags: dict[str, str]
) -> None:
    # Whole in the sales-by-UTM fact, the key keeps its row there as it was: other orders of
    # the same show, day and tags are not summed again without the rejected one.
    found = read_order(raw)

    assert isinstance(found, Reject)
    assert {c: v for c, v in (found.key or {}).items() if c in NO_UTM_COLUMNS} == tags


def test_the_privacy_boundary_keeps_a_wrong_shape_for_the_transform_to_reject() -> None:
    assert safe_order(order(baskets={}))["baskets"] == "<dict>"
    assert safe_order(order(utm=["vk"]))["utm"] == "<list>"
    assert safe_order(order(utm=[]))["utm"] == {t: "" for t in NO_UTM_COLUMNS}
    for raw in (order(baskets={}), order(utm=[1])):
        assert isinstance(read_order(safe_order(raw)), Reject)


@pytest.mark.parametrize(
    ("raw", "reason", "key"),
    [
        pytest.param(
            event(name="Стендап\x00\x1b[31m"),
            "name: control character U+0000",
            {"source": "qtickets_api", "event_id": "24080"},
            id="name_control_chars",
        ),
        pytest.param(
            event(name="Ш" * 10_485_760),
            "name: longer than 500 characters",
            {"source": "qtickets_api", "event_id": "24080"},
            id="name_10_485_760_chars",
        ),
        pytest.param(
            event("Москва" * 20),
            "city: longer than 100 characters",
            {"source": "qtickets_api", "event_id": "24080"},
            id="city_too_long",
        ),
        pytest.param(
            event(shows=[5]),
            "a show is '5', not an object",
            {"source": "qtickets_api", "event_id": "24080"},
            id="show_not_an_object",
        ),
        pytest.param(
            event(id="24080\x1b"),
            "id '24080\\x1b' is not an id",
            {"source": "qtickets_api"},
            id="id",
        ),
    ],
)
def test_ugly_events_are_rejects_with_key_and_facts(
    raw: dict[str, Any], reason: str, key: dict[str, Any]
) -> None:
    found = read_event(raw, CityDirectory.bundled())

    assert isinstance(found, Reject)
    assert reason in found.reason
    assert found.key == key
    assert found.facts == ("dim_events_src", "fact_qtickets_inventory_latest")


@pytest.mark.parametrize(
    ("seats", "reason"),
    [
        pytest.param([{"max_quantity": 10**20, "available": True}], "max_quantity: out of range"),
        pytest.param(["seat"], "a seat is 'seat', not an object"),
        pytest.param(
            [{"max_quantity": 1, "available": True, "free_quantity": -5}],
            "free_quantity: cannot be negative",
        ),
    ],
    ids=["max_quantity_10**20", "seat_not_an_object", "negative_free"],
)
def test_unreadable_seats_fail_the_show(seats: list[Any], reason: str) -> None:
    with pytest.raises(BadValue, match=reason):
        show_inventory(seats)
