"""The sales table shared by the Sheets and Gmail sources: header matching and event ids."""

from __future__ import annotations

from decimal import Decimal

import pytest
from zakaz_common.errors import BadValue
from zakaz_common.sales_table import (
    SALES_COLUMNS,
    columns_by_header,
    expected_headers,
    header_key,
    parse_event_id,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(24080, "24080", id="number_cell"),
        pytest.param(24080.0, "24080", id="whole_float"),
        pytest.param(Decimal("24080"), "24080", id="decimal"),
        pytest.param(" 24080 ", "24080", id="text_padded"),
        pytest.param("24 080", "24080", id="grouped_space"),
        pytest.param("24\u00a0080", "24080", id="grouped_nbsp"),
        pytest.param("24\u202f080", "24080", id="grouped_narrow_nbsp"),
        pytest.param("24080,0", "24080", id="text_comma_zero_decimals"),
        pytest.param("24080.00", "24080", id="text_dot_zero_decimals"),
        pytest.param("EV-7", "EV-7", id="non_numeric_kept"),
        pytest.param("24080,5", "24080,5", id="text_fraction_kept_as_text"),
    ],
)
def test_event_ids(raw: object, expected: str) -> None:
    assert parse_event_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("  ", id="blank"),
        pytest.param(None, id="none"),
        pytest.param(1.5, id="fraction_number"),
        pytest.param(True, id="checkbox"),
    ],
)
def test_bad_event_ids(raw: object) -> None:
    with pytest.raises(BadValue):
        parse_event_id(raw)


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("Date", "date"),
        ("  ДАТА ", "date"),
        ("ID  Мероприятия", "event_id"),
        ("Продано билётов", "tickets_sold"),
        ("выручка", "revenue"),
        ("Название", "event_name"),
        ("city", "city"),
    ],
    ids=[
        "english_title_case",
        "russian_upper_padded",
        "inner_spaces",
        "yo_folded",
        "russian",
        "optional",
        "plain",
    ],
)
def test_headers_match_name_or_alias_folded(header: str, column: str) -> None:
    assert columns_by_header(SALES_COLUMNS)[header_key(header)].name == column


def test_the_expected_headers_message_names_required_columns_only() -> None:
    text = expected_headers(SALES_COLUMNS)
    assert text.startswith("date (дата), event_id (id мероприятия)")
    assert "event_name" not in text
