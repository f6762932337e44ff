"""Numbers and text as a Russian-locale spreadsheet shows them, read into exact values."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, DecimalException
from typing import Final

from zakaz_common.errors import BadValue

_CENTS: Final = Decimal("0.01")
"""Money is Decimal(18, 2) in the warehouse."""

_MONEY_LIMIT: Final = Decimal(10) ** 16
"""Decimal(18, 2) holds 16 digits before the point; anything larger would fail the insert."""

_TEXT_MAX: Final = 64
"""Longest text read as a number: `-9 999 999 999 999 999,99 руб.` is 30; a 10 MB cell is refused
before any parsing (and before `Decimal` would build, then fail to round, a 10-million-digit
number)."""

_DIGITS_MAX: Final = 38
"""Largest power of ten a number may reach (Decimal(38) is ClickHouse's widest): bigger ones are
refused before `int()` or arithmetic would build huge values (`Decimal('1e999999')`)."""

_CONTEXT: Final = Context(prec=60, Emax=_DIGITS_MAX + 2, Emin=-60, traps=[])
"""The context arithmetic on a parsed number runs in: wide enough to be exact for every value
within `_DIGITS_MAX`, and with no traps (a failure shows as a non-finite result, not a raise)."""

_PREVIEW_MAX: Final = 50
"""How much of a bad value goes into an error message, which ends up in `rejects.reason`."""

_GROUP_SPACES: Final = " \u00a0\u202f\u2009\u2007"
"""Thousands separators a Russian locale prints: space, NBSP, narrow NBSP, thin, figure space."""

_CURRENCY: Final = r"(?:₽|руб\.?|р\.)"
_NUMBER: Final = re.compile(
    rf"(?P<cur1>{_CURRENCY})?\s*"
    r"(?P<sign>[-\u2212])?\s*"
    rf"(?P<cur2>{_CURRENCY})?\s*"
    rf"(?P<body>[0-9][0-9.,{_GROUP_SPACES}]*?)\s*"
    rf"(?P<cur3>{_CURRENCY})?",
    re.IGNORECASE,
)
_GROUP_SPLIT: Final = re.compile(f"[{_GROUP_SPACES}]")


def parse_decimal(value: object) -> Decimal:
    """Read an amount of money, quantised to kopecks (half up)."""
    exact = _exact(value, "number", currency=True)
    # copy_abs and comparisons are exact (no context): `abs()` would round, and could raise.
    if exact.copy_abs() >= _MONEY_LIMIT:
        raise BadValue(f"number too large for Decimal(18, 2): {preview(value)}")
    money = exact.quantize(_CENTS, rounding=ROUND_HALF_UP, context=_CONTEXT)
    if not money.is_finite():
        raise BadValue(f"not a readable number: {preview(value)}")
    # "-0,001" would otherwise come back as Decimal("-0.00") and print with a minus.
    return money if money else Decimal("0.00")


def parse_int(value: object) -> int:
    """Read a whole number (a ticket count); `12,0` is fine, `1,5` is not."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    exact = _exact(value, "whole number", currency=False)
    if exact != exact.to_integral_value():
        raise BadValue(f"not a whole number: {preview(value)}")
    return int(exact)


def clean_text(value: object) -> str:
    """`str(value)` trimmed, with every run of whitespace (NBSP included) made one space."""
    if value is None:
        return ""
    return " ".join(str(value).split())


def _exact(value: object, what: str, *, currency: bool) -> Decimal:
    try:
        exact = _read_exact(value, what, currency=currency)
    except DecimalException as exc:
        # Whatever `decimal` itself objects to is a bad value too, never another error.
        raise BadValue(f"not a readable {what}: {preview(value)}") from exc
    if not exact.is_finite():
        raise BadValue(f"not a finite {what}: {preview(value)}")
    if exact and exact.adjusted() >= _DIGITS_MAX:
        raise BadValue(f"{what} too large: {preview(value)}")
    return exact


def _read_exact(value: object, what: str, *, currency: bool) -> Decimal:
    # bool is an int; a checkbox column read as 1/0 would be a silent misreading.
    if isinstance(value, bool):
        raise BadValue(f"not a {what}: {preview(value)}")
    if isinstance(value, Decimal):
        exact = value
    elif isinstance(value, int):
        exact = Decimal(value)
    elif isinstance(value, float):
        # repr is the shortest text that round-trips: 0.1 + 0.2 stays 0.30000000000000004,
        # not 0.3000000000000000444089209850062616169452667236328125.
        exact = Decimal(repr(value))
    elif value is None:
        raise BadValue(f"empty {what}")
    elif isinstance(value, str):
        exact = _from_text(value, what, currency=currency)
    else:
        raise BadValue(f"not a {what}: {type(value).__name__} {preview(value)}")
    return exact


def _from_text(raw: str, what: str, *, currency: bool) -> Decimal:
    if len(raw) > _TEXT_MAX:
        raise BadValue(f"too long for a {what} ({len(raw)} characters): {preview(raw)}")
    text = raw.strip()
    if not text:
        raise BadValue(f"empty {what}")
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise BadValue(f"not a {what}: {preview(raw)}")
    marks = [name for name in ("cur1", "cur2", "cur3") if match[name]]
    if len(marks) > 1 or (marks and not currency):
        raise BadValue(f"unexpected currency sign in a {what}: {preview(raw)}")
    digits = _digits(match["body"])
    if digits is None:
        raise BadValue(f"ambiguous or misplaced separators in a {what}: {preview(raw)}")
    return Decimal(("-" if match["sign"] else "") + digits)


def _digits(body: str) -> str | None:
    """`1.234,56` → `1234.56`; None when the separators do not form one readable number."""
    puncts = [char for char in body if char in ".,"]
    if "." in body and "," in body:
        # Both present: whichever comes last is the decimal mark, the other groups thousands.
        decimal_mark: str | None = body[max(body.rfind("."), body.rfind(","))]
        group_mark = "," if decimal_mark == "." else "."
    elif len(puncts) == 1:
        decimal_mark, group_mark = puncts[0], ""
    else:
        # One mark repeated can only be grouping: 1,234,567 (and 1,2,3 fails the group check).
        decimal_mark, group_mark = None, puncts[0] if puncts else ""
    whole, fraction = body, ""
    if decimal_mark is not None:
        whole, _, fraction = body.rpartition(decimal_mark)
        if not fraction.isdigit() or decimal_mark in whole:
            return None
    groups = _GROUP_SPLIT.split(whole.replace(group_mark, " ") if group_mark else whole)
    if not all(group.isdigit() for group in groups):
        return None
    if len(groups) > 1 and (len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:])):
        return None
    return "".join(groups) + ("." + fraction if fraction else "")


def preview(value: object) -> str:
    """A bad value quoted for an error message: `repr` of its text, cut to 50 characters."""
    try:
        text = str(value)
    except ValueError:
        # An int of more than 4,300 digits has no str() (Python's guard against slow printing).
        text = f"<{type(value).__name__} too large to show>"
    if len(text) > _PREVIEW_MAX:
        text = text[:_PREVIEW_MAX] + "…"
    return repr(text)
