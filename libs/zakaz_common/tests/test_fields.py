"""Field readers: every ugly value a source has sent is refused with the field's name."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.fields import (
    CITY_MAX,
    EVENT_NAME_MAX,
    INT64,
    UINT32,
    UINT64,
    check_total,
    read_city,
    read_date,
    read_digits,
    read_int,
    read_money,
    read_optional_date,
    read_text,
    readable,
)
from zakaz_common.normalize import parse_decimal, parse_int

TEN_MB = "9" * (10 << 20)
"""A 10 MB money cell, as a tester pasted it."""

HUGE_NAME = "Концерт " * (10_485_760 // 8)
"""A 10,485,760-character event name."""


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [
        pytest.param(3, INT64, 3, id="int"),
        pytest.param("1 234", INT64, 1234, id="grouped_text"),
        pytest.param("12,0", INT64, 12, id="comma_zero"),
        pytest.param(2**63 - 1, INT64, 2**63 - 1, id="int64_max"),
        pytest.param(2**64 - 1, UINT64, 2**64 - 1, id="uint64_max"),
        pytest.param(0, UINT32, 0, id="zero"),
    ],
)
def test_read_int(value: object, column: object, expected: int) -> None:
    assert read_int(value, "tickets_sold", column) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "column", "reason"),
    [
        pytest.param("1e300", INT64, "tickets_sold: not a whole number: '1e300'", id="1e300_text"),
        pytest.param(1e300, INT64, "tickets_sold: whole number too large", id="1e300_float"),
        pytest.param(
            "99999999999999999999",
            INT64,
            "tickets_sold: out of range for Int64: '99999999999999999999'",
            id="20_nines",
        ),
        pytest.param(10**20, INT64, "tickets_sold: out of range for Int64", id="10**20"),
        pytest.param(2**63, INT64, "tickets_sold: out of range for Int64", id="int64_max_plus_1"),
        pytest.param(2**64, UINT64, "tickets_sold: out of range for UInt64", id="uint64_overflow"),
        pytest.param(2**32, UINT32, "tickets_sold: out of range for UInt32", id="uint32_overflow"),
        pytest.param(10**5000, INT64, "tickets_sold: out of range for Int64", id="5000_digits"),
        pytest.param(TEN_MB, INT64, "tickets_sold: too long for a whole number", id="10_MB"),
        pytest.param("-5", INT64, "tickets_sold: cannot be negative: '-5'", id="minus_5"),
        pytest.param("\u22125", INT64, "tickets_sold: cannot be negative", id="unicode_minus_5"),
        pytest.param("1,5", INT64, "tickets_sold: not a whole number: '1,5'", id="1,5"),
        pytest.param(float("nan"), INT64, "tickets_sold: not a finite whole number", id="NaN"),
        pytest.param(float("inf"), INT64, "tickets_sold: not a finite whole number", id="Infinity"),
        pytest.param("Infinity", INT64, "tickets_sold: not a whole number", id="Infinity_text"),
        pytest.param(True, INT64, "tickets_sold: not a whole number: 'True'", id="bool"),
        pytest.param(
            Decimal("1e999999999"), INT64, "tickets_sold: whole number too large", id="exp"
        ),
        pytest.param({"n": 1}, INT64, "tickets_sold: not a whole number: dict", id="object"),
        pytest.param(None, INT64, "tickets_sold: empty whole number", id="none"),
    ],
)
def test_read_int_refuses(value: object, column: object, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        read_int(value, "tickets_sold", column)  # type: ignore[arg-type]
    assert str(caught.value).startswith(reason)


def test_a_negative_int_where_the_column_allows_it() -> None:
    assert read_int("-5", "delta", negative=True) == -5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1 800,00 ₽", "1800.00", id="rubles"),
        pytest.param("9999999999999999.99", "9999999999999999.99", id="decimal_18_2_max"),
        pytest.param(0.1 + 0.2, "0.30", id="float_noise"),
    ],
)
def test_read_money(value: object, expected: str) -> None:
    assert str(read_money(value, "revenue")) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("\u2212100 ₽", "revenue: cannot be negative: '−100 ₽'", id="minus_100_rub"),
        pytest.param("-100", "revenue: cannot be negative", id="minus_100"),
        pytest.param("1e300", "revenue: not a number: '1e300'", id="1e300_text"),
        pytest.param(1e300, "revenue: number too large: '1e+300'", id="1e300_float"),
        pytest.param(10**20, "revenue: number too large for Decimal(18, 2)", id="10**20"),
        pytest.param(10**5000, "revenue: number too large", id="5000_digits"),
        pytest.param("10000000000000000", "revenue: number too large", id="10**16"),
        pytest.param(TEN_MB, "revenue: too long for a number (10485760 characters)", id="10_MB"),
        pytest.param(Decimal("9E+999999999"), "revenue: number too large", id="decimal_exp_max"),
        pytest.param(Decimal("1E-999999999"), "revenue: ", id="decimal_exp_min"),
        pytest.param(float("nan"), "revenue: not a finite number", id="NaN"),
        pytest.param(Decimal("sNaN"), "revenue: not a finite number", id="signalling_NaN"),
        pytest.param(float("inf"), "revenue: not a finite number", id="Infinity"),
        pytest.param(True, "revenue: not a number: 'True'", id="bool"),
        pytest.param([1], "revenue: not a number: list", id="list"),
    ],
)
def test_read_money_refuses(value: object, reason: str) -> None:
    if reason == "revenue: ":
        # A tiny amount is a readable zero, not an error of the decimal module.
        assert read_money(value, "revenue") == 0
        return
    with pytest.raises(BadValue) as caught:
        read_money(value, "revenue")
    assert str(caught.value).startswith(reason)


@pytest.mark.parametrize("parse", [parse_decimal, parse_int], ids=["decimal", "int"])
def test_a_10_mb_cell_is_refused_before_it_is_parsed(parse: object) -> None:
    # Parsing the cell would build a ten-million-digit Decimal, whose abs() raised Overflow.
    with pytest.raises(BadValue, match=r"^too long for a (whole )?number \(10485760 characters\)"):
        parse(TEN_MB)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("  Шоу\u00a0\u00a0«Лебединое» ", "Шоу «Лебединое»", id="trimmed"),
        pytest.param("a\tb\nc", "a b c", id="tab_newline_are_spaces"),
        pytest.param(1984, "1984", id="number_as_title"),
        pytest.param(None, "", id="none_is_empty"),
        pytest.param("я" * EVENT_NAME_MAX, "я" * EVENT_NAME_MAX, id="at_the_limit"),
    ],
)
def test_read_text(value: object, expected: str) -> None:
    assert read_text(value, "event_name", EVENT_NAME_MAX) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(
            "24080\x00\x1b[31m",
            r"event_name: control character U+0000 in '24080\x00\x1b[31m'",
            id="nul_and_escape",
        ),
        pytest.param("a\x1bb", "event_name: control character U+001B", id="escape"),
        pytest.param("a\x1fb", "event_name: control character U+001F", id="unit_separator"),
        pytest.param("a\x85b", "event_name: control character U+0085", id="c1_control"),
        pytest.param("abc\u202edcba", "event_name: control character U+202E", id="bidi_override"),
        pytest.param("a\udc80", "event_name: control character U+DC80", id="lone_surrogate"),
        pytest.param(
            HUGE_NAME, "event_name: longer than 500 characters (10485759)", id="10_485_760_chars"
        ),
        pytest.param("я" * (EVENT_NAME_MAX + 1), "event_name: longer than 500", id="one_over"),
        pytest.param(True, "event_name: not text: bool", id="bool"),
        pytest.param({"ru": "x"}, "event_name: not text: dict", id="object"),
        pytest.param(["x"], "event_name: not text: list", id="list"),
    ],
)
def test_read_text_refuses(value: object, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        read_text(value, "event_name", EVENT_NAME_MAX)
    assert str(caught.value).startswith(reason)


def test_required_text_must_not_be_blank() -> None:
    with pytest.raises(BadValue, match=r"^account: empty$"):
        read_text(" \u00a0", "account", 10, required=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(24080, "24080", id="int"),
        pytest.param(" 24080 ", "24080", id="padded_text"),
        pytest.param("18446744073709551615", "18446744073709551615", id="uint64_max"),
    ],
)
def test_read_digits(value: object, expected: str) -> None:
    assert read_digits(value, "banner_id") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(
            "24080\x00\x1b[31m", "banner_id: '24080\\x00\\x1b[31m' is not an id", id="ctl"
        ),
        pytest.param("EV-7", "banner_id: 'EV-7' is not an id of digits", id="letters"),
        pytest.param("²", "banner_id: '²' is not an id of digits", id="superscript_digit"),
        pytest.param(-5, "banner_id: '-5' is not an id", id="negative"),
        pytest.param(1.0, "banner_id: float '1.0' is not an id", id="float"),
        pytest.param(True, "banner_id: bool 'True' is not an id", id="bool"),
        pytest.param("1" * 65, "banner_id: longer than 64 characters (65)", id="too_long"),
        pytest.param(10**5000, "banner_id: ", id="5000_digits"),
        pytest.param("", "banner_id: missing", id="empty"),
        pytest.param(None, "banner_id: missing", id="none"),
    ],
)
def test_read_digits_refuses(value: object, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        read_digits(value, "banner_id")
    assert str(caught.value).startswith(reason)


def test_an_optional_id_may_be_absent() -> None:
    assert read_digits(None, "ad_group_id", required=False) == ""


def test_dates() -> None:
    assert read_date("15.01.2025", "sale_date") == date(2025, 1, 15)
    assert read_optional_date("  ", "event_date") is None
    with pytest.raises(BadValue, match=r"^sale_date: impossible date"):
        read_date("31.02.2025", "sale_date")
    with pytest.raises(BadValue, match=r"^sale_date: too long for a date \(10485760"):
        read_date(TEN_MB, "sale_date")


def test_cities() -> None:
    cities = CityDirectory([("спб", "санкт-петербург")])
    assert read_city(" СПб ", cities) == "санкт-петербург"
    assert read_city("", cities) == ""
    with pytest.raises(BadValue, match=r"^city: longer than 100"):
        read_city("x" * (CITY_MAX + 1), cities)
    with pytest.raises(BadValue, match=r"^city: control character"):
        read_city("Москва\x00", cities)


def test_totals_stay_within_the_column() -> None:
    assert check_total(2**63 - 1, "tickets_sold") == 2**63 - 1
    with pytest.raises(BadValue, match=r"^tickets_sold: the total"):
        check_total(2**63, "tickets_sold")


def test_readable_keeps_the_values_that_read() -> None:
    def bad() -> object:
        raise BadValue("no")

    found = readable({"source": lambda: "s", "sale_date": bad, "event_id": lambda: "7"})
    assert found == {"source": "s", "event_id": "7"}
