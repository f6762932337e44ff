"""Closing runs that a dead process left `running` or `queued` for ever.

A run's row says `running` until the run records its outcome. When the process dies first
(`kill -9`, a lost container, a full disk at the wrong moment) nothing else would ever change
it, so every `SWEEP_INTERVAL_SECONDS` the health service closes such rows as `error`
(`runs.ABANDONED_MESSAGE`). How it tells a dead run from a live one:

- a `running` run under a Redis lock is alive while the source's lock names it. A live run
  renews its lock every third of the lock TTL, so a run older than the TTL whose lock is free
  or names another run is dead (or lost its lock, which ends it as `error` anyway). The lock
  holders are read *before* the rows: a run that finished meanwhile wrote its outcome before
  letting go of its lock, so it no longer shows as `running`;
- a `running` run under a file lock (no Redis) is dead when it ran on this host and its
  process is gone; on another host it is left to the next run of its source;
- a `queued` run is dead when its RQ job is gone, finished or failed, or its worker died
  (`jobs.job_in_progress`).

With Redis down nothing Redis-based can be told, so those rows wait for the next sweep.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from zakaz_common import clock
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import ZakazError
from zakaz_common.jobs import ENQUEUE_GRACE_SECONDS, job_in_progress
from zakaz_common.locks import Holder, lock_key, lock_ttl_seconds, pid_alive, redis_client
from zakaz_common.runs import close_abandoned, get_run, open_runs

log = logging.getLogger(__name__)

#: Seconds between two sweeps: with the 60 s lock TTL a dead run is closed within 90 s.
SWEEP_INTERVAL_SECONDS = 30.0

_LOCK_PREFIX = lock_key("")


def lock_holders(conn: redis.Redis) -> dict[str, Holder | None]:
    """Every held source lock: source → its holder (None for a value zakaz did not write)."""
    holders: dict[str, Holder | None] = {}
    for key in conn.scan_iter(match=f"{_LOCK_PREFIX}*"):
        name = key.decode() if isinstance(key, bytes) else str(key)
        raw = conn.get(name)
        if raw is not None:
            holders[name[len(_LOCK_PREFIX) :]] = Holder.parse(raw)
    return holders


def sweep_abandoned(
    wh: Warehouse, conn: redis.Redis | None, *, ttl: int | None = None
) -> list[str]:
    """Close the runs whose process is dead (see the module docstring); their ids."""
    ttl = ttl if ttl is not None else lock_ttl_seconds()
    holders: dict[str, Holder | None] | None = None
    if conn is not None:
        try:
            holders = lock_holders(conn)
        except (RedisConnectionError, RedisTimeoutError):
            conn = None
    moment = clock.now()
    closed = []
    for run in open_runs(wh, statuses=("running", "queued")):
        if run["status"] == "running":
            dead = _running_is_dead(run, holders, moment, ttl)
        else:
            dead = _queued_is_dead(run, conn, moment)
        # Read again: a queued run may have started (or a dead job's run been closed) meanwhile.
        if dead and _unchanged(wh, run):
            close_abandoned(wh, run)
            closed.append(str(run["run_id"]))
    return closed


def _running_is_dead(
    run: Mapping[str, Any], holders: dict[str, Holder | None] | None, moment: float, ttl: int
) -> bool:
    if moment - _timestamp(run["started_at"]) <= ttl:
        return False
    metrics = _metrics(run)
    if metrics.get("lock") == "file":
        holder = metrics.get("holder")
        if not isinstance(holder, dict) or holder.get("host") != socket.gethostname():
            return False
        return not pid_alive(int(holder.get("pid") or 0))
    if holders is None:
        return False
    source = str(run["source"])
    if source not in holders:
        return True
    holder = holders[source]
    # A value zakaz did not write (an older version's lock) may be this run's: leave it.
    return holder is not None and holder.run_id != run["run_id"]


def _queued_is_dead(run: Mapping[str, Any], conn: redis.Redis | None, moment: float) -> bool:
    if conn is None or moment - _timestamp(run["started_at"]) <= ENQUEUE_GRACE_SECONDS:
        return False
    try:
        job = Job.fetch(str(run["run_id"]), connection=conn)
    except NoSuchJobError:
        return True
    except (RedisConnectionError, RedisTimeoutError):
        return False
    return not job_in_progress(conn, job, str(run["source"]))


def _unchanged(wh: Warehouse, run: Mapping[str, Any]) -> bool:
    now = get_run(wh, str(run["run_id"]))
    return (
        now is not None
        and now["status"] == run["status"]
        and _timestamp(now["started_at"]) == _timestamp(run["started_at"])
    )


def _metrics(run: Mapping[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(run.get("metrics") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _timestamp(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


class Sweeper:
    """A thread of the health service running `sweep_abandoned` every `SWEEP_INTERVAL_SECONDS`."""

    def __init__(
        self, wh: Warehouse, redis_url: str, interval: float = SWEEP_INTERVAL_SECONDS
    ) -> None:
        self._wh = wh
        self._conn = redis_client(redis_url)
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stopping.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                closed = sweep_abandoned(self._wh, self._conn)
            except (ZakazError, RedisConnectionError, RedisTimeoutError) as exc:
                log.warning(
                    "the sweep of abandoned runs failed (next in %.0f s): %s", self._interval, exc
                )
                continue
            if closed:
                log.warning("closed %d abandoned run(s): %s", len(closed), ", ".join(closed))
