"""Numbers and text as a Russian-locale sheet shows them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from zakaz_common.errors import BadValue
from zakaz_common.normalize import clean_text, parse_decimal, parse_int, preview


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1234, "1234.00", id="int"),
        pytest.param(0, "0.00", id="zero"),
        pytest.param(0.1 + 0.2, "0.30", id="float_binary_noise"),
        pytest.param(2.675, "2.68", id="float_half_up_via_repr"),
        pytest.param(1e15, "1000000000000000.00", id="float_exponent_repr"),
        pytest.param(Decimal("10.005"), "10.01", id="decimal_half_up"),
        pytest.param(Decimal("-10.005"), "-10.01", id="negative_half_away_from_zero"),
        pytest.param("1234", "1234.00", id="plain_text"),
        pytest.param("1234,5", "1234.50", id="decimal_comma"),
        pytest.param("1234.56", "1234.56", id="decimal_dot"),
        pytest.param("1 234,56", "1234.56", id="space_thousands"),
        pytest.param("1\u00a0234\u00a0567,89", "1234567.89", id="nbsp_thousands"),
        pytest.param("1\u202f234,5", "1234.50", id="narrow_nbsp_thousands"),
        pytest.param("1\u2009234", "1234.00", id="thin_space_thousands"),
        pytest.param("1.234,56", "1234.56", id="dot_thousands_comma_decimal"),
        pytest.param("1,234.56", "1234.56", id="comma_thousands_dot_decimal"),
        pytest.param("1.234.567,8", "1234567.80", id="dot_thousands_twice"),
        pytest.param("1,234,567", "1234567.00", id="comma_thousands_twice"),
        pytest.param("1,234", "1.23", id="single_comma_is_decimal"),
        pytest.param("12,345", "12.35", id="single_comma_rounds_half_up"),
        pytest.param("1 234 ₽", "1234.00", id="rouble_sign_after"),
        pytest.param("₽1 234", "1234.00", id="rouble_sign_before"),
        pytest.param("1 234,50 руб.", "1234.50", id="rub_dot_after"),
        pytest.param("1234 руб", "1234.00", id="rub_after"),
        pytest.param("1234руб.", "1234.00", id="rub_glued"),
        pytest.param("РУБ. 99,9", "99.90", id="rub_before_upper"),
        pytest.param("500 р.", "500.00", id="r_dot_after"),
        pytest.param("-1 234,5", "-1234.50", id="minus"),
        pytest.param("\u22121 234,5", "-1234.50", id="unicode_minus"),
        pytest.param("-1 234 ₽", "-1234.00", id="minus_then_rouble_after"),
        pytest.param("-₽100", "-100.00", id="minus_before_rouble"),
        pytest.param("₽ -100", "-100.00", id="rouble_before_minus"),
        pytest.param("- 100", "-100.00", id="minus_space"),
        pytest.param("-0,001", "0.00", id="negative_zero_is_zero"),
        pytest.param("\u00a0 42 \u00a0", "42.00", id="nbsp_around"),
        pytest.param("0,5", "0.50", id="below_one"),
        pytest.param("9999999999999999.99", "9999999999999999.99", id="decimal_18_2_max"),
    ],
)
def test_parse_decimal(value: object, expected: str) -> None:
    parsed = parse_decimal(value)
    assert isinstance(parsed, Decimal)
    assert str(parsed) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("\u00a0 ", "empty", id="only_nbsp"),
        pytest.param(None, "empty", id="none"),
        pytest.param("abc", "not a number: 'abc'", id="word"),
        pytest.param("₽", "not a number", id="only_currency"),
        pytest.param("-", "not a number", id="only_minus"),
        pytest.param("1,2,3", "ambiguous or misplaced separators", id="comma_garbage"),
        pytest.param("1.2.3", "ambiguous or misplaced separators", id="dot_garbage"),
        pytest.param("12 34", "ambiguous or misplaced separators", id="space_short_group"),
        pytest.param("1234 567", "ambiguous or misplaced separators", id="space_long_first_group"),
        pytest.param("1  234", "ambiguous or misplaced separators", id="double_space"),
        pytest.param("1.234,5,6", "ambiguous or misplaced separators", id="two_decimal_commas"),
        pytest.param("1,234.567,8", "ambiguous or misplaced separators", id="mixed_marks_twice"),
        pytest.param("1,23.45", "ambiguous or misplaced separators", id="short_group_before_dot"),
        pytest.param("12,", "ambiguous or misplaced separators", id="trailing_comma"),
        pytest.param("12,3 4", "ambiguous or misplaced separators", id="space_in_fraction"),
        pytest.param(",5", "not a number", id="leading_comma"),
        pytest.param("--5", "not a number", id="double_minus"),
        pytest.param("1e5", "not a number", id="exponent_text"),
        pytest.param("nan", "not a number", id="nan_text"),
        pytest.param("Infinity", "not a number", id="infinity_text"),
        pytest.param("12$", "not a number", id="dollar"),
        pytest.param("(100)", "not a number", id="accounting_parentheses"),
        pytest.param("₽100 руб.", "unexpected currency sign", id="two_currency_marks"),
        pytest.param("١٢٣", "not a number", id="arabic_indic_digits"),
        pytest.param(float("nan"), "not a finite number", id="float_nan"),
        pytest.param(float("-inf"), "not a finite number", id="float_inf"),
        pytest.param(Decimal("NaN"), "not a finite number", id="decimal_nan"),
        pytest.param(True, "not a number: 'True'", id="bool"),
        pytest.param([1], "not a number: list", id="list"),
        pytest.param("10 000 000 000 000 000", "too large", id="over_decimal_18_2"),
        pytest.param(Decimal("1E+30"), "too large", id="decimal_huge_exponent"),
    ],
)
def test_parse_decimal_rejects(value: object, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        parse_decimal(value)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(12, 12, id="int"),
        pytest.param(-3, -3, id="negative_int"),
        pytest.param(12.0, 12, id="whole_float"),
        pytest.param(Decimal("12.000"), 12, id="whole_decimal"),
        pytest.param("12", 12, id="text"),
        pytest.param("12,0", 12, id="comma_zero"),
        pytest.param("12.00", 12, id="dot_zeros"),
        pytest.param("1 234", 1234, id="space_thousands"),
        pytest.param("1\u00a0234\u00a0567", 1234567, id="nbsp_thousands"),
        pytest.param("1.234.567", 1234567, id="dot_thousands_twice"),
        pytest.param("1 234,00", 1234, id="thousands_and_zero_fraction"),
        pytest.param("\u22125", -5, id="unicode_minus"),
        pytest.param(" 7 ", 7, id="spaces_around"),
        pytest.param(10**20, 10**20, id="bigger_than_int64"),
    ],
)
def test_parse_int(value: object, expected: int) -> None:
    parsed = parse_int(value)
    assert type(parsed) is int
    assert parsed == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("1,5", "not a whole number: '1,5'", id="comma_fraction"),
        pytest.param("1.5", "not a whole number", id="dot_fraction"),
        pytest.param("1,234", "not a whole number", id="single_comma_is_decimal_not_thousands"),
        pytest.param(1.5, "not a whole number", id="float_fraction"),
        pytest.param(Decimal("2.01"), "not a whole number", id="decimal_fraction"),
        pytest.param(True, "not a whole number: 'True'", id="bool_true"),
        pytest.param(False, "not a whole number: 'False'", id="bool_false"),
        pytest.param("", "empty", id="empty"),
        pytest.param(None, "empty", id="none"),
        pytest.param("abc", "not a whole number", id="word"),
        pytest.param("1,2,3", "ambiguous or misplaced separators", id="comma_garbage"),
        pytest.param("5 руб.", "unexpected currency sign", id="currency_on_a_count"),
        pytest.param(float("inf"), "not a finite whole number", id="float_inf"),
    ],
)
def test_parse_int_rejects(value: object, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        parse_int(value)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "", id="none"),
        pytest.param("", "", id="empty"),
        pytest.param("  Концерт  ", "Концерт", id="trimmed"),
        pytest.param("Шоу\u00a0\u00a0«Лебединое»", "Шоу «Лебединое»", id="nbsp_inside"),
        pytest.param("a\t\nb\u202fc\u2009d", "a b c d", id="tabs_newlines_narrow_thin"),
        pytest.param("\u00a0", "", id="only_nbsp"),
        pytest.param(12, "12", id="int"),
        pytest.param("Большой Зал", "Большой Зал", id="case_kept"),
    ],
)
def test_clean_text(value: object, expected: str) -> None:
    assert clean_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("abc", "'abc'", id="short"),
        pytest.param("я" * 60, "'" + "я" * 50 + "…'", id="long_cut_at_50"),
        pytest.param(None, "'None'", id="none"),
    ],
)
def test_preview(value: object, expected: str) -> None:
    assert preview(value) == expected
