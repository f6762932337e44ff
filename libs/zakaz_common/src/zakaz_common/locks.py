"""Per-source locks: two runs of one source never overlap.

The lock lives in Redis (shared by every container); when Redis cannot be reached, a local
`zakaz run` still works with a file lock under `ZAKAZ_DATA_DIR/locks` (mode 600).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, LockNotOwnedError
from redis.exceptions import TimeoutError as RedisTimeoutError

from zakaz_common.errors import LockBusy

#: Prefix of every zakaz key in Redis.
KEY_PREFIX = "zakaz:"

#: How long Redis keeps a lock whose holder died without releasing it.
DEFAULT_LOCK_TTL_SECONDS = 3600


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
    except (RedisConnectionError, RedisTimeoutError, OSError):
        return False


@contextmanager
def source_lock(
    source: str,
    *,
    redis_url: str,
    data_dir: Path,
    ttl_seconds: int = DEFAULT_LOCK_TTL_SECONDS,
) -> Iterator[str]:
    """Hold the source's lock for the block; raises LockBusy when another run holds it.

    Yields where the lock lives (`redis` or `file`), for the run's metrics.
    """
    client = redis_client(redis_url)
    if redis_available(client):
        lock = client.lock(lock_key(source), timeout=ttl_seconds, blocking=False)
        try:
            acquired = lock.acquire()
        except (RedisConnectionError, RedisTimeoutError):
            acquired = None
        if acquired is not None:
            if not acquired:
                raise LockBusy(f"a run of {source} is already in progress (Redis lock held)")
            try:
                yield "redis"
            finally:
                # Expired or Redis restarted: the TTL clears it; there is nothing to undo.
                with suppress(
                    LockError, LockNotOwnedError, RedisConnectionError, RedisTimeoutError
                ):
                    lock.release()
            return
    with file_lock(source, data_dir):
        yield "file"


@contextmanager
def file_lock(source: str, data_dir: Path) -> Iterator[None]:
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
        os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
