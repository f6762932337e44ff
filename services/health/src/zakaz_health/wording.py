"""How times and durations are written for people: Moscow time, short units."""

from __future__ import annotations

from datetime import datetime

from zakaz_common.timeutil import MSK


def duration(seconds: float | None) -> str:
    """A duration in the two largest units, e.g. `2 d 3 h`, `5 h 10 min`, `40 s`; `—` for None."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def moscow(ts: float | None, *, zone: bool = True) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM MSK` (without ` MSK` if not `zone`); `—` for None."""
    if ts is None:
        return "—"
    text = datetime.fromtimestamp(ts, MSK).strftime("%Y-%m-%d %H:%M")
    return f"{text} MSK" if zone else text
