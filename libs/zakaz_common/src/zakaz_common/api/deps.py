"""What the control API's routes depend on: the source's runtime, its warehouse, Redis, the token.

Everything is built lazily on first use (never at import or app creation), once per app, so an
app can be created before ClickHouse or Redis answer and recovers when they do.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.errors import ZakazError
from zakaz_common.locks import redis_client
from zakaz_common.manifest import SourceManifest
from zakaz_common.migrate import migrate, pending
from zakaz_common.redact import scrub
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings

#: Seconds a Redis call of the API may take: a down Redis must give a quick 503, not a hang.
REDIS_TIMEOUT_SECONDS = 2.0

#: Reports a problem with the worker that runs beside the API (None when it is fine).
WorkerProbe = Callable[[], str | None]


@dataclass
class Runtime:
    """One source's control API state: its manifest and lazily opened connections."""

    manifest: SourceManifest
    redis_url_override: str | None = None
    warehouse_override: Warehouse | None = None
    #: Set by `serve_source`: the health of the worker thread or process it runs.
    local_worker: WorkerProbe | None = None
    _core: CoreSettings | None = field(default=None, repr=False)
    _redis: redis.Redis | None = field(default=None, repr=False)
    _warehouse: Warehouse | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def source(self) -> str:
        """The source's name (also its queue's name)."""
        return self.manifest.name

    def core(self) -> CoreSettings:
        """The core settings, read from the environment on first use."""
        with self._lock:
            if self._core is None:
                self._core = load_settings(CoreSettings, self.source)
            return self._core

    def redis_url(self) -> str:
        """The Redis URL: the one given to `create_app`, else `REDIS_URL`."""
        return self.redis_url_override or self.core().redis_url

    def redis(self) -> redis.Redis:
        """A Redis client that fails fast; it reconnects by itself once Redis is back."""
        url = self.redis_url()
        with self._lock:
            if self._redis is None:
                self._redis = redis_client(url, timeout=REDIS_TIMEOUT_SECONDS)
            return self._redis

    def warehouse(self) -> Warehouse:
        """The warehouse, opened (and migrated if needed) on first use."""
        if self.warehouse_override is not None:
            return self.warehouse_override
        core = self.core()
        with self._lock:
            if self._warehouse is None:
                wh = open_warehouse(load_settings(WarehouseSettings, self.source), core)
                if pending(wh):
                    migrate(wh)
                self._warehouse = wh
            return self._warehouse


def get_runtime(request: Request) -> Runtime:
    """The runtime of the app serving this request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_warehouse(runtime: RuntimeDep) -> Warehouse:
    """The source's warehouse, or 503 naming it when it cannot be opened."""
    try:
        return runtime.warehouse()
    except ZakazError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the warehouse is not answering: {scrub(str(exc))}",
        ) from exc


WarehouseDep = Annotated[Warehouse, Depends(get_warehouse)]

_bearer = HTTPBearer(auto_error=False, description="the value of ZAKAZ_API_TOKEN")


def require_token(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let a mutating call through only with the bearer token `ZAKAZ_API_TOKEN`.

    Missing token: 401 with `WWW-Authenticate: Bearer`; wrong token: 403. With no token
    configured every mutating call is refused (403) unless `ZAKAZ_ALLOW_ANONYMOUS=true`.
    """
    core = runtime.core()
    if core.api_token is None or not core.api_token.get_secret_value():
        if core.allow_anonymous:
            return
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "mutating calls are refused: ZAKAZ_API_TOKEN is not set on this service "
            "(set it, or ZAKAZ_ALLOW_ANONYMOUS=true for a private sandbox)",
        )
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send the API token as `Authorization: Bearer <ZAKAZ_API_TOKEN>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = core.api_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the API token is wrong")
