"""VK Ads access tokens: cached centrally, refreshed under a lock, never minted per run.

VK issues at most 5 tokens per (client_id, user) and refuses the 6th with 403, and refreshing
replaces the token value (the old one dies at once). So every worker shares one token pair per
account, kept in Redis with its expiry; only the holder of the account's lock obtains a new one.
When Redis cannot be reached (a local `zakaz run`), the pair lives in a file under
`ZAKAZ_DATA_DIR/vk_tokens` (mode 600) with an flock instead (CONTRACT §1).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import redis
from redis.exceptions import LockError, RedisError
from zakaz_common.errors import AuthError, TransientError
from zakaz_common.locks import KEY_PREFIX, redis_available, redis_client

log = logging.getLogger(__name__)

#: A token this close to its expiry is renewed before use, so a run never starts on a token
#: that dies half-way through its requests.
EXPIRY_MARGIN_SECONDS = 600

#: How long a cached pair is kept: VK forgets tokens unused for about a month.
CACHE_TTL_SECONDS = 30 * 86400

#: How long a worker waits for another one to finish renewing the account's token.
LOCK_WAIT_SECONDS = 60

#: 401 codes after which the same token may work again once refreshed.
EXPIRED = "expired_token"


@dataclass(frozen=True)
class Token:
    """An access token with its refresh token and expiry (epoch seconds)."""

    access_token: str
    refresh_token: str
    expires_at: float

    def usable(self, now: float) -> bool:
        """Whether the token is far enough from its expiry to start using it."""
        return now < self.expires_at - EXPIRY_MARGIN_SECONDS

    def __repr__(self) -> str:
        # Never let a token reach a log line or a traceback through repr.
        return f"Token(expires_at={self.expires_at:.0f})"


class TokenCache(Protocol):
    """Where an account's token pair is shared between runs and workers."""

    where: str

    def get(self) -> Token | None:
        """The cached pair, or None."""

    def put(self, token: Token) -> None:
        """Store a new pair."""

    def locked(self) -> AbstractContextManager[None]:
        """Hold the account's renewal lock for the block."""


def cache_key(api_url: str, client_id: str, username: str) -> str:
    """A stable key of one (VK host, app, user); no secret goes into it."""
    host = hashlib.sha256(api_url.encode()).hexdigest()[:10]
    return f"{host}:{client_id}:{username or '-'}"


class RedisTokenCache:
    """The pair as JSON under `zakaz:vk_token:<key>`, renewed under a Redis lock."""

    where = "redis"

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._client = client
        self._key = f"{KEY_PREFIX}vk_token:{key}"

    def get(self) -> Token | None:
        """The cached pair, or None."""
        try:
            raw = self._client.get(self._key)
        except RedisError as exc:
            raise TransientError(f"Redis failed while reading the VK token cache: {exc}") from exc
        return _decode(raw)

    def put(self, token: Token) -> None:
        """Store a new pair."""
        try:
            self._client.set(self._key, json.dumps(asdict(token)), ex=CACHE_TTL_SECONDS)
        except RedisError as exc:
            raise TransientError(f"Redis failed while storing the VK token: {exc}") from exc

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the renewal lock (waits for another worker that is renewing)."""
        lock = self._client.lock(
            f"{self._key}:lock", timeout=LOCK_WAIT_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS
        )
        try:
            acquired = lock.acquire()
        except RedisError as exc:
            raise TransientError(f"Redis failed while locking the VK token: {exc}") from exc
        if not acquired:
            raise TransientError("another worker has been renewing the VK token for over a minute")
        try:
            yield
        finally:
            try:
                lock.release()
            except (LockError, RedisError):
                log.warning("the VK token lock expired before it was released")


class FileTokenCache:
    """The pair in `<data_dir>/vk_tokens/<key>.json` (mode 600), renewed under an flock."""

    where = "file"

    def __init__(self, data_dir: Path, key: str) -> None:
        self._dir = data_dir / "vk_tokens"
        name = hashlib.sha256(key.encode()).hexdigest()[:24]
        self._path = self._dir / f"{name}.json"
        self._lock_path = self._dir / f"{name}.lock"

    @property
    def path(self) -> Path:
        """The file holding the pair."""
        return self._path

    def get(self) -> Token | None:
        """The cached pair, or None."""
        try:
            return _decode(self._path.read_bytes())
        except FileNotFoundError:
            return None

    def put(self, token: Token) -> None:
        """Store a new pair atomically, readable by the owner only."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, json.dumps(asdict(token)).encode())
        finally:
            os.close(fd)
        tmp.replace(self._path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive flock (released by the kernel if the holder dies)."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _decode(raw: bytes | str | None) -> Token | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Token(
            str(data["access_token"]), str(data["refresh_token"]), float(data["expires_at"])
        )
    except (ValueError, KeyError, TypeError):
        # A damaged entry is as good as none: the next renewal overwrites it.
        return None


def open_token_cache(redis_url: str, data_dir: Path, key: str) -> TokenCache:
    """The Redis cache when Redis answers, else the file cache under `data_dir`."""
    client = redis_client(redis_url)
    if redis_available(client):
        return RedisTokenCache(client, key)
    log.info("Redis is not reachable: the VK token is cached in a file under %s", data_dir)
    return FileTokenCache(data_dir, key)


class TokenSource(Protocol):
    """What the API client asks for a token, and tells after a 401."""

    def token(self) -> str:
        """A token to sign the next request with."""

    def renew(self, stale: str, code: str) -> str:
        """A token to retry with after `stale` was refused with 401 `code`."""


class StaticToken:
    """`VK_TOKEN`: used as given; a refusal needs a person."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        """The configured token."""
        return self._token

    def renew(self, stale: str, code: str) -> str:
        """Always fails: a pre-issued token cannot be renewed here."""
        raise AuthError(
            f"VK Ads refused VK_TOKEN ({code}): issue a new token in ads.vk.com → Настройки → "
            "API, or set VK_CLIENT_ID and VK_CLIENT_SECRET so zakaz obtains and refreshes it"
        )


#: Obtains a new pair (`refresh` None) or refreshes one; raises AuthError or TransientError.
Issuer = Callable[[str | None], Token]


class ManagedToken:
    """A token pair per account: from the cache, refreshed or issued only under the lock."""

    def __init__(
        self, cache: TokenCache, issue: Issuer, clock: Callable[[], float] = time.time
    ) -> None:
        self._cache = cache
        self._issue = issue
        self._clock = clock
        self._current: Token | None = None

    def token(self) -> str:
        """The cached token while usable; else one refreshed or issued under the lock."""
        if self._current is None or not self._current.usable(self._clock()):
            cached = self._cache.get()
            if cached is not None and cached.usable(self._clock()):
                self._current = cached
            else:
                self._current = self._renew(stale=None, code=EXPIRED)
        return self._current.access_token

    def renew(self, stale: str, code: str) -> str:
        """After a 401: take a token another worker renewed meanwhile, else renew it now."""
        self._current = self._renew(stale=stale, code=code)
        return self._current.access_token

    def _renew(self, *, stale: str | None, code: str) -> Token:
        with self._cache.locked():
            cached = self._cache.get()
            now = self._clock()
            if cached is not None and cached.access_token != stale and cached.usable(now):
                return cached
            token: Token | None = None
            if cached is not None and code == EXPIRED and cached.refresh_token:
                try:
                    token = self._issue(cached.refresh_token)
                except AuthError as exc:
                    log.warning("refreshing the VK token failed (%s); issuing a new one", exc)
            if token is None:
                # `invalid_token`, `revoked_token`, or a refresh that was refused.
                token = self._issue(None)
            self._cache.put(token)
            return token
