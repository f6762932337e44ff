"""Per-source locks: two runs of one source never overlap, and a dead holder frees its source.

The lock lives in Redis (shared by every container) as a redis-py `Lock` with a short TTL
(`lock_ttl_seconds()`, 60 s by default) that a heartbeat thread renews while the run lives: a
holder killed with `kill -9` frees its source within one TTL, and at once for the next run on
the same host: the lock's token names the holder (run id, host, pid), and a run that finds the
lock held by a process of its own host that no longer exists deletes that exact token and takes
the lock (`free_dead_holder`). The token also lets only the holder renew or release the lock, and
an operator or the health service tell whose it is. A run checks its lease (`Lease.ensure_held`) before it publishes
and before it records its outcome: when the key is gone or belongs to another token (Redis
restarted, or the renewals failed for a whole TTL) the run stops with `LockLost` rather than race
the run that may hold the source now.

When Redis cannot be reached, a local `zakaz run` still works with a file lock under
`ZAKAZ_DATA_DIR/locks` (mode 600): an flock, which dies with its process.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, LockNotOwnedError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.lock import Lock

from zakaz_common import interrupts
from zakaz_common.errors import ConfigError, LockBusy, ZakazError

log = logging.getLogger(__name__)

#: Prefix of every zakaz key in Redis.
KEY_PREFIX = "zakaz:"

#: How long a source's lock outlives its last renewal: a dead holder frees the source this long
#: after it died; a live one renews it every third of it (`HEARTBEATS_PER_TTL`).
DEFAULT_LOCK_TTL_SECONDS = 60

#: Environment variable overriding the TTL (seconds, at least `MIN_LOCK_TTL_SECONDS`).
LOCK_TTL_ENV = "ZAKAZ_LOCK_TTL_SECONDS"

#: Below this a renewal delayed by a busy machine could let a live run's lock expire.
MIN_LOCK_TTL_SECONDS = 3

#: Renewals per TTL: two may fail (a Redis blip) before a live holder's lock could expire.
HEARTBEATS_PER_TTL = 3

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class LockLost(ZakazError):
    """The run no longer holds its source's lock (Redis restarted, or it could not renew)."""

    # The source is free or another run has it; this run's work can be done again later.
    transient = True


def lock_ttl_seconds() -> int:
    """The lock TTL: `ZAKAZ_LOCK_TTL_SECONDS`, else `DEFAULT_LOCK_TTL_SECONDS`."""
    raw = os.environ.get(LOCK_TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TTL_SECONDS
    try:
        ttl = int(raw)
    except ValueError:
        raise ConfigError(f"{LOCK_TTL_ENV}={raw!r} is not a whole number of seconds") from None
    if ttl < MIN_LOCK_TTL_SECONDS:
        raise ConfigError(f"{LOCK_TTL_ENV} must be at least {MIN_LOCK_TTL_SECONDS} seconds")
    return ttl


def lock_key(source: str) -> str:
    """The Redis key of a source's lock."""
    return f"{KEY_PREFIX}lock:{source}"


def redis_client(url: str, *, timeout: float = 2.0) -> redis.Redis:
    """A Redis client that fails fast when the server is down."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def redis_available(client: redis.Redis) -> bool:
    """Whether Redis answers a PING."""
    try:
        return bool(client.ping())
    except _REDIS_DOWN:
        return False


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: the run, and the host and process running it."""

    run_id: str
    host: str
    pid: int

    @classmethod
    def me(cls, run_id: str) -> Holder:
        """This process, holding the lock for `run_id`."""
        return cls(run_id, socket.gethostname(), os.getpid())

    def token(self) -> str:
        """The lock's value in Redis."""
        return json.dumps({"run_id": self.run_id, "host": self.host, "pid": self.pid})

    @classmethod
    def parse(cls, raw: bytes | str) -> Holder | None:
        """The holder a lock value names, or None for a value zakaz did not write."""
        try:
            data = json.loads(raw)
            return cls(str(data["run_id"]), str(data["host"]), int(data["pid"]))
        except (ValueError, TypeError, KeyError):
            return None

    def as_dict(self) -> dict[str, str | int]:
        """JSON-simple form, as recorded in the run's metrics."""
        return {"host": self.host, "pid": self.pid}


def lock_holder(client: redis.Redis, source: str) -> Holder | Literal[False] | None:
    """Who holds the source's Redis lock: a Holder, None when free, False for a foreign value."""
    raw = client.get(lock_key(source))
    if raw is None:
        return None
    return Holder.parse(raw) or False


# Delete the key only while it still holds the dead holder's token (another run may have taken it).
_COMPARE_AND_DELETE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def free_dead_holder(client: redis.Redis, source: str) -> Holder | None:
    """Free the source's lock when its holder is a process of this host that is gone.

    A holder on another host (another container) is left to its TTL: its pid means nothing
    here. Returns the holder freed, or None.
    """
    try:
        raw = client.get(lock_key(source))
        if raw is None:
            return None
        holder = Holder.parse(raw)
        if holder is None or holder.host != socket.gethostname() or pid_alive(holder.pid):
            return None
        if not client.eval(_COMPARE_AND_DELETE, 1, lock_key(source), raw):
            return None
    except _REDIS_DOWN:
        return None
    log.warning(
        "freed the lock of %s left by run %s (pid %d is gone)", source, holder.run_id, holder.pid
    )
    return holder


class Lease:
    """A source lock held by this run: renewed in the background, checked before every write."""

    def __init__(
        self, holder: Holder, where: Literal["redis", "file"], *, lock: Lock | None, ttl: int
    ) -> None:
        #: The run holding it.
        self.holder = holder
        #: Where the lock lives, for the run's metrics.
        self.where = where
        self._lock = lock
        self._ttl = ttl
        self._lost: str | None = None
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def ensure_held(self) -> None:
        """Raise LockLost unless the lock is still this run's (and Interrupted after a stop signal).

        For a Redis lock this asks Redis (renewing it): a heartbeat may not have run since a
        restart, and a write made without the lock could race the run that holds it now.
        """
        interrupts.raise_if_interrupted()
        if self._lock is None:
            return  # an flock cannot be lost while the process lives
        if self._lost is None:
            self._renew(self._lock)
        if self._lost is not None:
            raise LockLost(f"the source lock was lost: {self._lost}; stopped before writing more")

    @property
    def lost(self) -> str | None:
        """Why the lock was lost, or None while it is held."""
        return self._lost

    def _renew(self, lock: Lock) -> None:
        try:
            lock.reacquire()
        except LockNotOwnedError:
            self._lose("its Redis key is gone or names another run (Redis restarted?)")
        except LockError as exc:
            self._lose(f"it could not be renewed ({exc})")
        except _REDIS_DOWN as exc:
            # The key may be alive, but nothing this run writes can be known to be exclusive.
            self._lose(f"Redis is not reachable to confirm it ({type(exc).__name__})")
        else:
            self._renewed = time.monotonic()

    def _lose(self, why: str) -> None:
        if self._lost is None:
            self._lost = why
            log.error("run %s lost the lock: %s", self.holder.run_id, why)

    def _heartbeat(self, lock: Lock) -> None:
        while not self._stop.wait(self._ttl / HEARTBEATS_PER_TTL):
            try:
                lock.reacquire()
            except LockNotOwnedError:
                self._lose("its Redis key is gone or names another run (Redis restarted?)")
                return
            except (LockError, *_REDIS_DOWN) as exc:
                # Try again next beat; after a whole TTL without a renewal the key has expired.
                if time.monotonic() - self._renewed > self._ttl:
                    self._lose(f"it was not renewed for {self._ttl} s ({type(exc).__name__})")
                    return
            else:
                self._renewed = time.monotonic()

    def _start(self) -> None:
        if self._lock is None:
            return
        self._beat = threading.Thread(
            target=self._heartbeat,
            args=(self._lock,),
            name=f"lock-{self.holder.run_id[:8]}",
            daemon=True,
        )
        self._beat.start()

    def _release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self._lock is not None:
            # Lost or Redis away: the key is gone, someone else's, or expires within the TTL.
            with suppress(LockError, *_REDIS_DOWN):
                self._lock.release()


@contextmanager
def source_lock(
    source: str,
    *,
    redis_url: str,
    data_dir: Path,
    run_id: str = "",
    ttl_seconds: int | None = None,
) -> Iterator[Lease]:
    """Hold the source's lock for the block; raises LockBusy when another run holds it."""
    ttl = ttl_seconds if ttl_seconds is not None else lock_ttl_seconds()
    holder = Holder.me(run_id)
    client = redis_client(redis_url)
    if redis_available(client):
        # Not thread-local: the heartbeat thread renews with the token the run's thread took.
        lock = client.lock(lock_key(source), timeout=ttl, blocking=False, thread_local=False)
        try:
            acquired: bool | None = lock.acquire(token=holder.token())
        except (RedisConnectionError, RedisTimeoutError):
            acquired = None
        if acquired is not None:
            if not acquired and free_dead_holder(client, source):
                acquired = lock.acquire(token=holder.token())
            if not acquired:
                raise LockBusy(f"a run of {source} is already in progress (Redis lock held)")
            lease = Lease(holder, "redis", lock=lock, ttl=ttl)
            try:
                lease._start()
                yield lease
            finally:
                lease._release()
            return
    with file_lock(source, data_dir, holder):
        yield Lease(holder, "file", lock=None, ttl=ttl)


@contextmanager
def file_lock(source: str, data_dir: Path, holder: Holder | None = None) -> Iterator[None]:
    """An exclusive, non-blocking flock on `data_dir/locks/<source>.lock`."""
    directory = data_dir / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{source}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LockBusy(f"a run of {source} is already in progress (file lock {path})") from exc
        os.ftruncate(fd, 0)
        os.write(fd, (holder.token() if holder else str(os.getpid())).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that pid still runs (another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
