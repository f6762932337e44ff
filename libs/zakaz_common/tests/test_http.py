"""`Retry-After` parsing, the one all upstream clients use."""

from __future__ import annotations

import pytest
from zakaz_common.http import retry_after_seconds

NOW = 1_780_000_000.0  # 2026-05-28T20:26:40Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("nan", None),
        ("soon", None),
        ("Thu, 28 May 2026 20:27:10 GMT", 30.0),
        ("Thu, 28 May 2026 20:00:00 GMT", 0.0),
    ],
    ids=[
        "absent",
        "empty",
        "blank",
        "seconds",
        "fraction_padded",
        "negative",
        "nan",
        "junk",
        "http_date_ahead",
        "http_date_past",
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == expected
