"""Table tests of the pure worksheet parsing: headers, values, rejects, snapshots."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue, StructuralError
from zakaz_common.sales_table import parse_event_id
from zakaz_common.timeutil import MSK
from zakaz_qtickets_sheets.transform import (
    EVENTS_COLUMNS,
    INVENTORY_COLUMNS,
    SALES_COLUMNS,
    find_header,
    in_window,
    parse_events,
    parse_inventory,
    parse_sales,
    parse_sheets,
    stamp_inventory,
)

CITIES = CityDirectory.bundled()
NBSP = "\u00a0"
SALES_HEADER = ["Дата", "ID мероприятия", "Город", "Продано билетов", "Выручка", "Название"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            ["date", "event_id", "city", "tickets_sold", "revenue", "event_name"],
            {"date": 0, "event_id": 1, "city": 2, "tickets_sold": 3, "revenue": 4, "event_name": 5},
            id="english_exact",
        ),
        pytest.param(
            SALES_HEADER,
            {"date": 0, "event_id": 1, "city": 2, "tickets_sold": 3, "revenue": 4, "event_name": 5},
            id="russian_aliases",
        ),
        pytest.param(
            [
                " REVENUE ",
                f"Продано{NBSP}{NBSP}билетов",
                "Комментарий",
                "город",
                "Event_ID",
                "ДАТА",
            ],
            {"revenue": 0, "tickets_sold": 1, "city": 3, "event_id": 4, "date": 5},
            id="case_spaces_nbsp_any_order_extra_column_optional_name_absent",
        ),
        pytest.param(
            ["id  мероприятия", "Дата", "Город", "Продано билетов", "Выручка", "", "Название"],
            {"event_id": 0, "date": 1, "city": 2, "tickets_sold": 3, "revenue": 4, "event_name": 6},
            id="inner_double_space_and_hole_in_header",
        ),
    ],
)
def test_sales_headers_are_found_in_any_spelling(
    header: list[str], expected: dict[str, int]
) -> None:
    found = find_header("Sales", [header], SALES_COLUMNS)

    assert dict(found.columns) == expected


def test_header_is_the_first_non_empty_row() -> None:
    rows: list[list[Any]] = [[], ["", "  "], SALES_HEADER, ["15.01.2025"]]

    assert find_header("Sales", rows, SALES_COLUMNS).row_index == 2


@pytest.mark.parametrize(
    ("tab", "rows", "columns", "words"),
    [
        pytest.param(
            "Sales",
            [["Дата", "ID мероприятия", "Город", "Продано билетов", "Название"]],
            SALES_COLUMNS,
            ["'Sales'", "'revenue'", "'выручка'"],
            id="sales_without_revenue",
        ),
        pytest.param(
            "Остатки",
            [["event_id", "event_date", "city", "tickets_total"]],
            INVENTORY_COLUMNS,
            ["'Остатки'", "'tickets_left'", "'осталось билетов'"],
            id="inventory_without_tickets_left_under_another_title",
        ),
        pytest.param(
            "Events",
            [["event_id", "Название", "event_name", "event_date", "city"]],
            EVENTS_COLUMNS,
            ["'Events'", "two 'event_name' columns (B and C)"],
            id="duplicate_column_in_two_languages",
        ),
        pytest.param("Events", [[], ["  "]], EVENTS_COLUMNS, ["'Events' is empty"], id="empty_tab"),
    ],
)
def test_structural_problems_name_the_tab_and_the_header(
    tab: str, rows: list[list[Any]], columns: Any, words: list[str]
) -> None:
    with pytest.raises(StructuralError) as caught:
        find_header(tab, rows, columns)

    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(24080, "24080", id="number_cell"),
        pytest.param(24080.0, "24080", id="whole_float"),
        pytest.param(Decimal("24080"), "24080", id="decimal"),
        pytest.param(" 24080 ", "24080", id="text_padded"),
        pytest.param("24 080", "24080", id="grouped_space"),
        pytest.param(f"24{NBSP}080", "24080", id="grouped_nbsp"),
        pytest.param("EV-7", "EV-7", id="non_numeric_id_kept"),
    ],
)
def test_event_ids(raw: object, expected: str) -> None:
    assert parse_event_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="spaces"),
        pytest.param(None, id="none"),
        pytest.param(1.5, id="fraction"),
        pytest.param(True, id="checkbox"),
    ],
)
def test_bad_event_ids(raw: object) -> None:
    with pytest.raises(BadValue):
        parse_event_id(raw)


_ROW = ["15.01.2025", "24080", "Москва", "3", "5 400,00 ₽", "Концерт"]


def _sale(**changes: Any) -> list[Any]:
    order = ["date", "event_id", "city", "tickets_sold", "revenue", "event_name"]
    return [changes.get(name, _ROW[i]) for i, name in enumerate(order)]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            _sale(), (date(2025, 1, 15), "24080", "москва", 3, "5400.00"), id="ru_formatted"
        ),
        pytest.param(
            _sale(revenue=f"12{NBSP}600,50{NBSP}₽"),
            (date(2025, 1, 15), "24080", "москва", 3, "12600.50"),
            id="nbsp_thousands_and_kopecks",
        ),
        pytest.param(
            _sale(revenue="12 600 руб."),
            (date(2025, 1, 15), "24080", "москва", 3, "12600.00"),
            id="rub_suffix",
        ),
        pytest.param(
            _sale(revenue="1800.5"),
            (date(2025, 1, 15), "24080", "москва", 3, "1800.50"),
            id="dot_decimal",
        ),
        pytest.param(
            _sale(date=45672, event_id=24080, tickets_sold=3, revenue=1800.5),
            (date(2025, 1, 15), "24080", "москва", 3, "1800.50"),
            id="unformatted_numbers_and_serial_date",
        ),
        pytest.param(
            _sale(date=45672.604166666664),
            (date(2025, 1, 15), "24080", "москва", 3, "5400.00"),
            id="serial_datetime",
        ),
        pytest.param(
            _sale(date="45672"),
            (date(2025, 1, 15), "24080", "москва", 3, "5400.00"),
            id="serial_as_text",
        ),
        pytest.param(
            _sale(date="15.01.2025 14:30"),
            (date(2025, 1, 15), "24080", "москва", 3, "5400.00"),
            id="ru_datetime_text",
        ),
        pytest.param(
            _sale(date="2025-01-15"),
            (date(2025, 1, 15), "24080", "москва", 3, "5400.00"),
            id="iso_date",
        ),
        pytest.param(
            _sale(city="СПб"),
            (date(2025, 1, 15), "24080", "санкт-петербург", 3, "5400.00"),
            id="city_alias",
        ),
        pytest.param(
            _sale(city=f" Нижний{NBSP}Новгород "),
            (date(2025, 1, 15), "24080", "нижний новгород", 3, "5400.00"),
            id="city_nbsp_inside",
        ),
        pytest.param(
            _sale(city="Атлантида"),
            (date(2025, 1, 15), "24080", "атлантида", 3, "5400.00"),
            id="unknown_city_kept",
        ),
        pytest.param(
            _sale(tickets_sold="1 200"),
            (date(2025, 1, 15), "24080", "москва", 1200, "5400.00"),
            id="grouped_count",
        ),
    ],
)
def test_sales_values(row: list[Any], expected: tuple[Any, ...]) -> None:
    parsed = parse_sales("Sales", [SALES_HEADER, row], CITIES, {})

    assert parsed.rejects == []
    got = parsed.rows[0]
    assert (got["sale_date"], got["event_id"], got["city"], got["tickets_sold"]) == expected[:4]
    assert got["revenue"] == Decimal(expected[4])
    assert got["source"] == "qtickets_sheets"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param(
            _sale(revenue="н/д"), "Sales row 2: revenue: not a number: 'н/д'", id="bad_number"
        ),
        pytest.param(
            _sale(date="31.02.2025"), "Sales row 2: date: impossible date", id="impossible_date"
        ),
        pytest.param(
            _sale(date="вчера"), "Sales row 2: date: unknown date format", id="words_for_a_date"
        ),
        pytest.param(
            _sale(event_id=""), "Sales row 2: event_id: empty event_id", id="missing_event"
        ),
        pytest.param(
            _sale(tickets_sold="1,5"), "tickets_sold: not a whole number", id="fractional_tickets"
        ),
        pytest.param(
            _ROW[:4], "Sales row 2: revenue: empty number", id="ragged_row_without_revenue"
        ),
        pytest.param(
            _sale(revenue="1.234.5"),
            "revenue: ambiguous or misplaced separators",
            id="garbled_money",
        ),
    ],
)
def test_unreadable_sales_rows_are_rejected_with_reasons(row: list[Any], reason: str) -> None:
    parsed = parse_sales("Sales", [SALES_HEADER, row], CITIES, {})

    assert parsed.rows == []
    assert len(parsed.rejects) == 1
    assert reason in parsed.rejects[0].reason
    assert parsed.rejects[0].entity == "sales"
    assert parsed.rejects[0].raw["row"] == 2  # type: ignore[index,call-overload]


KEY = {"source": "qtickets_sheets", "sale_date": date(2025, 1, 15), "event_id": "24080"}
TEN_MB = "9" * (10 << 20)


@pytest.mark.parametrize(
    ("row", "reason", "key"),
    [
        pytest.param(
            _sale(tickets_sold="1e300"),
            "tickets_sold: not a whole number: '1e300'",
            KEY,
            id="1e300",
        ),
        pytest.param(
            _sale(tickets_sold=1e300), "tickets_sold: whole number too large", KEY, id="1e300_cell"
        ),
        pytest.param(
            _sale(tickets_sold="99999999999999999999"),
            "tickets_sold: out of range for Int64: '99999999999999999999'",
            KEY,
            id="20_nines_tickets",
        ),
        pytest.param(
            _sale(revenue=TEN_MB),
            "revenue: too long for a number (10485760 characters)",
            KEY,
            id="10_MB_money",
        ),
        pytest.param(_sale(tickets_sold="-5"), "tickets_sold: cannot be negative", KEY, id="-5"),
        pytest.param(_sale(revenue="−100 ₽"), "revenue: cannot be negative", KEY, id="-100_rub"),
        pytest.param(
            _sale(event_id="24080\x00\x1b[31m"),
            "event_id: control character U+0000",
            {"source": "qtickets_sheets", "sale_date": date(2025, 1, 15)},
            id="control_chars_in_event_id",
        ),
        pytest.param(
            _sale(event_name="Ш" * 10_485_760),
            "event_name: longer than 500 characters (10485760)",
            KEY,
            id="10_485_760_char_name",
        ),
        pytest.param(
            _sale(tickets_sold="1,5"), "tickets_sold: not a whole number: '1,5'", KEY, id="1,5"
        ),
        pytest.param(_sale(tickets_sold=True), "tickets_sold: not a whole number", KEY, id="bool"),
        pytest.param(_sale(revenue=float("nan")), "revenue: not a finite number", KEY, id="NaN"),
        pytest.param(
            _sale(revenue=float("inf")), "revenue: not a finite number", KEY, id="Infinity"
        ),
        pytest.param(
            _sale(date="31.02.2025"),
            "date: impossible date",
            {"source": "qtickets_sheets", "event_id": "24080"},
            id="bad_date_keeps_source_and_event",
        ),
        pytest.param(_sale(city="Москва\x1b"), "city: control character U+001B", KEY, id="city"),
    ],
)
def test_ugly_sales_values_are_rejects_naming_the_field_with_key_and_facts(
    row: list[Any], reason: str, key: dict[str, Any]
) -> None:
    parsed = parse_sales("Sales", [SALES_HEADER, row], CITIES, {})

    assert parsed.rows == []
    [reject] = parsed.rejects
    assert reject.reason.startswith(f"Sales row 2: {reason}")
    assert reject.key == key
    assert reject.facts == ("fact_qtickets_sales_daily",)


def test_event_and_inventory_rejects_carry_their_fact_and_key() -> None:
    events = parse_events(
        "Events",
        [["event_id", "event_name", "event_date", "city"], ["7", "x" * 501, "", "Москва"]],
        CITIES,
    )
    inventory = parse_inventory(
        "Inventory",
        [
            ["event_id", "event_date", "city", "tickets_total", "tickets_left"],
            ["7", "", "Москва", "10**20", "1"],
            ["8", "", "Москва", str(10**20), "1"],
        ],
        CITIES,
        {},
    )

    assert [(r.reason, r.key, r.facts) for r in events.rejects] == [
        (
            "Events row 2: event_name: longer than 500 characters (501)",
            {"source": "qtickets_sheets", "event_id": "7"},
            ("dim_events_src",),
        )
    ]
    assert [(r.reason, r.key, r.facts) for r in inventory.rejects] == [
        (
            "Inventory row 2: tickets_total: not a whole number: '10**20'",
            {"source": "qtickets_sheets", "event_id": "7"},
            ("fact_qtickets_inventory_latest",),
        ),
        (
            "Inventory row 3: tickets_total: out of range for Int64: '100000000000000000000'",
            {"source": "qtickets_sheets", "event_id": "8"},
            ("fact_qtickets_inventory_latest",),
        ),
    ]


def test_blank_rows_anywhere_are_skipped_and_counted() -> None:
    rows: list[list[Any]] = [
        [],
        SALES_HEADER,
        [],
        ["", "  ", None],
        _sale(),
        ["", "", "", "", "", "", "комментарий без продажи"],
        _sale(),
    ]

    parsed = parse_sales("Sales", rows, CITIES, {})

    assert (len(parsed.rows), parsed.blank, parsed.rejects) == (2, 3, [])


def test_identical_rows_stay_separate_sale_records() -> None:
    parsed = parse_sales("Sales", [SALES_HEADER, _sale(), _sale()], CITIES, {})

    assert len(parsed.rows) == 2
    assert parsed.rows[0] == parsed.rows[1]


def test_a_missing_sales_event_name_comes_from_the_events_tab() -> None:
    row = _sale(event_name="")

    parsed = parse_sales("Sales", [SALES_HEADER, row[:5]], CITIES, {"24080": "Стендап"})

    assert parsed.rows[0]["event_name"] == "Стендап"


def test_reject_raw_holds_only_known_columns_with_pii_scrubbed() -> None:
    header = [*SALES_HEADER, "Комментарий"]
    row = [*_sale(revenue="н/д", city="+7 916 555-12-34"), "Смирнова Анна anna@example.ru"]

    parsed = parse_sales("Sales", [header, row], CITIES, {})

    raw = str(parsed.rejects[0].raw)
    assert "555-12-34" not in raw and "<phone>" in raw
    assert "Смирнова" not in raw and "anna@example.ru" not in raw


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            [24080, "Стендап: «Ёлки»", 45993, " МОСКВА "],
            ("24080", "Стендап: «Ёлки»", date(2025, 12, 2), "москва"),
            id="unformatted_serial_name_keeps_yo",
        ),
        pytest.param(
            ["24081", "Лекция", "02.12.2025 20:00", "Питер"],
            ("24081", "Лекция", date(2025, 12, 2), "санкт-петербург"),
            id="formatted_datetime_and_alias",
        ),
        pytest.param(
            ["24082", "Лекция", "", "Казань"],
            ("24082", "Лекция", None, "казань"),
            id="date_unknown_yet",
        ),
    ],
)
def test_events(row: list[Any], expected: tuple[Any, ...]) -> None:
    header = ["ID мероприятия", "Название", "Дата мероприятия", "Город", "Площадка"]

    parsed = parse_events("Events", [header, row], CITIES)

    got = parsed.rows[0]
    assert (got["event_id"], got["event_name"], got["event_date"], got["city"]) == expected


def test_inventory_reads_counts_names_events_and_rejects_negative_seats() -> None:
    header = ["City", "event_id", "Event_Date", "tickets_total", "Tickets_Left"]
    rows = [
        header,
        ["Москва", 24080, 45993, f"1{NBSP}200", "865"],
        ["Москва", 24081, 45993, 100, -5],
        ["Москва", 24082, "", 100, "много"],
    ]

    parsed = parse_inventory("Inventory", rows, CITIES, {"24080": "Стендап"})

    assert [
        (r["event_id"], r["event_name"], r["tickets_total"], r["tickets_left"]) for r in parsed.rows
    ] == [("24080", "Стендап", 1200, 865)]
    assert [r.reason for r in parsed.rejects] == [
        "Inventory row 3: tickets_left: cannot be negative: '-5'",
        "Inventory row 4: tickets_left: not a whole number: 'много'",
    ]


def test_parse_sheets_reports_every_broken_tab_at_once() -> None:
    tabs: dict[str, tuple[str, list[list[Any]]]] = {
        "events": ("Events", [["event_id", "event_name", "event_date"]]),
        "inventory": (
            "Inventory",
            [["event_id", "event_date", "city", "tickets_total", "tickets_left"]],
        ),
        "sales": ("Sales", [SALES_HEADER[:4]]),
    }

    with pytest.raises(StructuralError) as caught:
        parse_sheets(tabs, CITIES)

    message = str(caught.value)
    assert "'Events'" in message and "'city'" in message
    assert "'Sales'" in message and "'revenue'" in message
    assert "'Inventory'" not in message


def test_stamp_inventory_keeps_updated_at_of_unchanged_rows() -> None:
    before = datetime(2025, 1, 1, 12, 0, tzinfo=MSK)
    now = datetime(2025, 1, 2, 12, 0, tzinfo=MSK)
    same = {
        "event_id": "1",
        "event_name": "A",
        "event_date": None,
        "city": "казань",
        "tickets_total": 10,
        "tickets_left": 5,
    }
    changed = {**same, "event_id": "2", "tickets_left": 4}
    new = {**same, "event_id": "3"}
    previous = {
        "1": (("A", None, "казань", 10, 5), before),
        "2": (("A", None, "казань", 10, 5), before),
    }

    count = stamp_inventory([same, changed, new], previous, now)

    assert count == 2
    assert [same["updated_at"], changed["updated_at"], new["updated_at"]] == [before, now, now]


@pytest.mark.parametrize(
    ("day", "window", "inside"),
    [
        pytest.param(date(2025, 1, 15), None, True, id="no_window_whole_sheet"),
        pytest.param(date(2025, 1, 15), (date(2025, 1, 15), date(2025, 1, 15)), True, id="edge"),
        pytest.param(date(2025, 1, 14), (date(2025, 1, 15), date(2025, 1, 20)), False, id="before"),
        pytest.param(date(2025, 1, 21), (date(2025, 1, 15), date(2025, 1, 20)), False, id="after"),
    ],
)
def test_in_window(day: date, window: tuple[date, date] | None, inside: bool) -> None:
    assert in_window({"sale_date": day}, window) is inside
