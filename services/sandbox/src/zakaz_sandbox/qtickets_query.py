"""The QTickets sandbox's reading of a request body: `where`, `orderBy`, `select`, `page`.

Conditions are `{column, operator?, value?}` with dot paths into nested objects and lists
(`baskets.show_id`); comparisons are MySQL-loose (`payed = 1` matches true, "24081" matches
24081) and timestamps compare as moments whatever their offsets (shared/upstream-apis.md §1.2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo

_MSK: Final = ZoneInfo("Europe/Moscow")
_OPERATORS: Final = frozenset(
    {
        "=",
        "!=",
        "<",
        ">",
        "<=",
        ">=",
        "in",
        "not in",
        "in array",
        "not in array",
        "null",
        "not null",
    }
)


class BodyError(ValueError):
    """The body cannot be read; the API answers 400 with this message."""


def positive(value: Any, name: str) -> int:
    """A page number or size from the body."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise BodyError(f'"{name}" must be a positive integer')
    if int(value) < 1:
        raise BodyError(f'"{name}" must be a positive integer')
    return int(value)


# -- select ------------------------------------------------------------------------------------


def paths(select: Any) -> dict[str, Any]:
    """`["id", "baskets.price"]` → `{"id": {}, "baskets": {"price": {}}}`; {} selects everything."""
    if select is None:
        return {}
    if not isinstance(select, list) or not all(isinstance(p, str) for p in select):
        raise BodyError('"select" must be a list of field names')
    tree: dict[str, Any] = {}
    for path in select:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def project(value: Any, tree: Mapping[str, Any]) -> Any:
    """The selected paths of a value (lists are projected item by item)."""
    if not tree:
        return value
    if isinstance(value, list):
        return [project(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: project(value[k], sub) for k, sub in tree.items() if k in value}


# -- where ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Condition:
    column: str
    operator: str
    value: Any


def where(body: Mapping[str, Any]) -> list[_Condition]:
    """The body's `where` conditions, checked."""
    raw = body.get("where", [])
    if not isinstance(raw, list):
        raise BodyError('"where" must be a list of conditions')
    conditions = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("column"), str):
            raise BodyError('every "where" item needs a "column"')
        operator = str(item.get("operator", "=")).lower()
        if operator not in _OPERATORS:
            raise BodyError(f'Unknown operator "{operator}"')
        if operator in {"in", "not in"} and not isinstance(item.get("value"), list):
            raise BodyError(f'"{operator}" needs a list value')
        conditions.append(_Condition(item["column"], operator, item.get("value")))
    return conditions


def matches(item: Mapping[str, Any], conditions: Iterable[_Condition]) -> bool:
    """Whether an object meets every condition (an unknown column is a BodyError)."""
    for cond in conditions:
        head = cond.column.split(".")[0]
        if head not in item:
            raise BodyError(f'Unknown column "{cond.column}"')
        values = _values(item, cond.column.split("."))
        if cond.operator in {"!=", "not in", "not null", "not in array"}:
            if not all(_test(v, cond) for v in values or [None]):
                return False
        elif not any(_test(v, cond) for v in values or [None]):
            return False
    return True


def _values(value: Any, parts: list[str]) -> list[Any]:
    if isinstance(value, list):
        return [v for item in value for v in _values(item, parts)]
    if not parts:
        return [value]
    if not isinstance(value, dict) or parts[0] not in value:
        return []
    return _values(value[parts[0]], parts[1:])


def _test(actual: Any, cond: _Condition) -> bool:
    op, expected = cond.operator, cond.value
    if op in {"null", "not null"}:
        return (actual is None) == (op == "null")
    if op in {"in", "not in"}:
        hit = any(_equal(actual, e) for e in expected)
        return hit == (op == "in")
    if op in {"in array", "not in array"}:
        hit = isinstance(actual, list) and any(_equal(a, expected) for a in actual)
        return hit == (op == "in array")
    if op in {"=", "!="}:
        return _equal(actual, expected) == (op == "=")
    if actual is None or expected is None:
        return False
    left, right = _comparable(actual), _comparable(expected)
    if type(left) is not type(right):
        left, right = str(actual), str(expected)
    outcome: bool = {
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]
    return outcome


def _equal(actual: Any, expected: Any) -> bool:
    # MySQL-style loose equality: payed = 1 matches true, "24081" matches 24081.
    if actual is None or expected is None:
        return actual is expected
    left, right = _comparable(actual), _comparable(expected)
    if type(left) is type(right):
        return bool(left == right)
    return str(actual) == str(expected)


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return Decimal(text)
        except InvalidOperation:
            pass
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        return moment if moment.tzinfo else moment.replace(tzinfo=_MSK)
    return value


def ordered(items: list[dict[str, Any]], order_by: Any) -> list[dict[str, Any]]:
    """Items sorted by the body's `orderBy` (by `id` ascending without one)."""
    if order_by is None:
        order_by = {"id": "asc"}
    if not isinstance(order_by, dict):
        raise BodyError('"orderBy" must be an object {column: asc|desc}')
    result = sorted(items, key=lambda i: _sort_key(i.get("id")))
    for column, direction in reversed(list(order_by.items())):
        if str(direction).lower() not in {"asc", "desc"}:
            raise BodyError(f'orderBy "{column}" must be asc or desc')
        result.sort(key=_column_key(column), reverse=str(direction).lower() == "desc")
    return result


def _column_key(column: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda item: _sort_key(item.get(column))


def _sort_key(value: Any) -> tuple[int, Any]:
    comparable = _comparable(value) if value is not None else None
    if comparable is None:
        return (0, "")
    if isinstance(comparable, datetime):
        return (2, comparable.timestamp())
    if isinstance(comparable, Decimal):
        return (1, comparable)
    return (3, str(comparable))
