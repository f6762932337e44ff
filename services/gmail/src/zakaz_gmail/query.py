"""The Gmail search of a run, and whether a message falls in the run's dates. Pure.

Without `--since/--to/--days` a run searches `GMAIL_QUERY` as it is (by default the last 7
days of reports). With them, messages are selected by their date: the query's own date
operators give way to `after:`/`before:` in epoch seconds, which Gmail reads as exact instants
(day-based operators follow the mailbox's time zone), and each message's `internalDate` is
checked against the window in Moscow time as well.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Final

from zakaz_common.timeutil import MSK

_DATE_OPERATOR: Final = re.compile(
    r"^-?(newer_than|older_than|after|before|newer|older):\S+$", re.I
)
"""Search terms that select by date, replaced when the run has a window of its own."""


def _start_of(day: date) -> int:
    return int(datetime.combine(day, time(0, 0), MSK).timestamp())


def search_query(base: str, window: tuple[date, date] | None) -> str:
    """`GMAIL_QUERY`, or with a window, its non-date terms plus the window's instants."""
    if window is None:
        return base
    since, to = window
    terms = [t for t in base.split() if not _DATE_OPERATOR.match(t)]
    terms += [f"after:{_start_of(since) - 1}", f"before:{_start_of(to + timedelta(days=1))}"]
    return " ".join(terms)


def message_day(internal_date_ms: int) -> date:
    """The Moscow date a message arrived on."""
    return datetime.fromtimestamp(internal_date_ms / 1000, MSK).date()


def in_window(internal_date_ms: int, window: tuple[date, date] | None) -> bool:
    """Whether a message's date is inside the run's window (no window: every message)."""
    return window is None or window[0] <= message_day(internal_date_ms) <= window[1]
