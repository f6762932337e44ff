"""HTTP helpers every upstream client shares."""

from __future__ import annotations

import email.utils
import math
import time


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for: delta-seconds or an HTTP date; None when absent
    or unreadable; never negative (a date in the past means now)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(seconds, 0.0)
