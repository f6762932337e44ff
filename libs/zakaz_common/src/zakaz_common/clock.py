"""The platform's clock: real time, or a virtual one that a simulated day moves forward.

Everything that decides *when* in business terms reads `now()`: which schedule slots are due,
the times a run, a reject or an alert is recorded at, and the health service's freshness,
failover and alert evaluation. Mechanisms keep real time: lock TTLs, HTTP timeouts, deadlines,
RQ's heartbeats and retry waits.

`ZAKAZ_VIRTUAL_CLOCK_FILE` names a file holding one number, an offset in seconds (virtual time =
real time + offset; a missing or empty file means 0). `make soak` writes it, atomically, to jump
a running `zakaz up` through a day in minutes. The file is read again only when it changes.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from zakaz_common.errors import ConfigError

#: The variable naming the virtual clock's offset file; unset (production) means real time.
CLOCK_FILE_VARIABLE = "ZAKAZ_VIRTUAL_CLOCK_FILE"

_lock = threading.Lock()
_cache: dict[str, tuple[int, float]] = {}


def offset() -> float:
    """Seconds the platform's clock is ahead of real time (0 unless a virtual clock is set)."""
    name = os.environ.get(CLOCK_FILE_VARIABLE, "").strip()
    if not name:
        return 0.0
    path = Path(name)
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0.0
    with _lock:
        cached = _cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    text = path.read_text().strip()
    try:
        value = float(text) if text else 0.0
    except ValueError:
        raise ConfigError(
            f"{CLOCK_FILE_VARIABLE} {name} holds {text[:40]!r}, not a number of seconds"
        ) from None
    with _lock:
        _cache[name] = (stamp, value)
    return value


def now() -> float:
    """The platform's current time, as a Unix timestamp."""
    return time.time() + offset()


def utcnow() -> datetime:
    """The platform's current time, aware UTC."""
    return datetime.fromtimestamp(now(), UTC)


def set_offset(path: Path, seconds: float) -> None:
    """Move a virtual clock: write its offset atomically (what a simulated day calls)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(f"{seconds:.3f}\n")
    temp.replace(path)
