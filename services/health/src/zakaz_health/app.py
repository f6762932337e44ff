"""The health service's HTTP API: liveness, per-source state as JSON, metrics, the status page."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from redis.exceptions import RedisError
from zakaz_common import clock
from zakaz_common.alerts import Alert
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.errors import ConfigError, ZakazError
from zakaz_common.locks import redis_client
from zakaz_common.manifest import SourceManifest
from zakaz_common.manifest import manifests as installed_manifests
from zakaz_common.redact import scrub
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings, redact_dsn
from zakaz_common.timeutil import to_msk

from zakaz_health import page
from zakaz_health.figures import read_figures
from zakaz_health.history import group, read_runs
from zakaz_health.metrics import build_registry
from zakaz_health.settings import SERVICE, PageSettings
from zakaz_health.state import Snapshot, collect, iso, source_names

#: Seconds a health probe waits for Redis before calling it down.
REDIS_TIMEOUT_SECONDS = 2.0


class HealthContext:
    """What the endpoints share: the manifests, Redis, and the warehouse (opened on first use)."""

    def __init__(
        self,
        redis_url: str | None,
        warehouse: Warehouse | None,
        manifests: Iterable[SourceManifest] | None,
    ) -> None:
        core = load_settings(CoreSettings, SERVICE)
        self.redis_url = redis_url or core.redis_url
        self.manifests = list(
            manifests if manifests is not None else installed_manifests().values()
        )
        self._core = core
        self._warehouse = warehouse
        self._lock = threading.Lock()
        #: Set by `serve`: reports a problem of the process's own alert worker, if any.
        self.local_worker: Callable[[], str | None] | None = None
        self.redis: redis.Redis = redis_client(self.redis_url, timeout=REDIS_TIMEOUT_SECONDS)

    def warehouse(self) -> Warehouse:
        """The warehouse, opened now if it was not yet (raises ZakazError when it cannot be)."""
        with self._lock:
            if self._warehouse is None:
                self._warehouse = open_warehouse(
                    load_settings(WarehouseSettings, SERVICE), self._core
                )
            return self._warehouse

    def known(self, source: str) -> bool:
        """Whether a source is one the service reports on."""
        return source in source_names(self.manifests)

    def snapshot(self, now: float) -> Snapshot:
        """Every source's state now."""
        return collect(self.warehouse(), self.redis, self.manifests, now)

    def page_extras(self, now: float, links: list[tuple[str, str]]) -> page.Extras:
        """The page's history, figures and links; figures that cannot be read are said so."""
        wh = self.warehouse()
        try:
            figures, problem = read_figures(wh, now), None
        except ZakazError as exc:
            figures, problem = None, scrub(str(exc))[:300]
        return page.Extras(
            history=group(read_runs(wh)), figures=figures, figures_error=problem, links=links
        )

    def probe(self) -> dict[str, str]:
        """`ok` or the reason, for the warehouse and for Redis."""
        checks: dict[str, str] = {}
        try:
            self.warehouse().scalar("SELECT 1")
            checks["warehouse"] = "ok"
        except ZakazError as exc:
            checks["warehouse"] = f"error: {scrub(str(exc))}"
        try:
            self.redis.ping()
            checks["redis"] = "ok"
        except (RedisError, OSError) as exc:
            checks["redis"] = f"error: {redact_dsn(self.redis_url)}: {scrub(str(exc))}"
        if self.local_worker is not None:
            problem = self.local_worker()
            checks["worker"] = "ok" if problem is None else f"error: {problem}"
        return checks


def _context(request: Request) -> HealthContext:
    ctx: HealthContext = request.app.state.health
    return ctx


Ctx = Annotated[HealthContext, Depends(_context)]


def create_app(
    *,
    redis_url: str | None = None,
    warehouse: Warehouse | None = None,
    manifests: Iterable[SourceManifest] | None = None,
    page_settings: PageSettings | None = None,
) -> FastAPI:
    """The health service's app; by default everything comes from the settings."""
    links = (page_settings or _page_settings()).links
    app = FastAPI(
        title="zakaz health",
        description="Per-source status, freshness, alerts and metrics of zakaz.",
        version="1",
    )
    context = HealthContext(redis_url, warehouse, manifests)
    app.state.health = context
    app.state.registry = build_registry(context.snapshot)

    @app.exception_handler(ZakazError)
    def _unavailable(request: Request, exc: ZakazError) -> Response:
        message = scrub(str(exc))
        if request.url.path == "/":
            return HTMLResponse(page.render_error(message), status_code=503)
        return JSONResponse({"status": "error", "detail": message}, status_code=503)

    @app.get("/healthz")
    def healthz(ctx: Ctx) -> JSONResponse:
        """200 when the warehouse, Redis (and the alert worker) answer; else 503 naming the part."""
        checks = ctx.probe()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "error", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/healthz/detailed")
    def detailed(ctx: Ctx) -> dict[str, Any]:
        """Every source's state, and the open alerts."""
        snap = ctx.snapshot(clock.now())
        return {
            "status": "ok" if snap.redis_error is None else "degraded",
            "generated_at": iso(snap.now),
            "redis": "ok" if snap.redis_error is None else f"error: {snap.redis_error}",
            "sources": [s.to_dict() for s in snap.sources],
            "open_alerts": [_alert(a) for a in snap.alerts],
        }

    @app.get("/healthz/freshness")
    def freshness(ctx: Ctx) -> dict[str, Any]:
        """Each source's last success and data date against its freshness budget."""
        snap = ctx.snapshot(clock.now())
        return {
            "generated_at": iso(snap.now),
            "stale": [s.source for s in snap.sources if s.enabled and s.stale],
            "sources": [s.freshness_dict() for s in snap.sources],
        }

    @app.get("/healthz/{source}")
    def one_source(source: str, ctx: Ctx) -> JSONResponse:
        """One source's state with its recent runs and open alerts; 404 for an unknown source."""
        if not ctx.known(source):
            known = ", ".join(source_names(ctx.manifests))
            return JSONResponse(
                {"detail": f"unknown source {source!r}; known: {known}"}, status_code=404
            )
        snap = ctx.snapshot(clock.now())
        state = snap.get(source)
        body = state.to_dict() if state else {}
        body["recent_runs"] = [r.to_dict() for r in state.recent_runs] if state else []
        body["alerts"] = [_alert(a) for a in snap.alerts if a.job == source]
        return JSONResponse(body)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        """Every source's state in the Prometheus text format, computed now."""
        return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def status_page(ctx: Ctx) -> HTMLResponse:
        """The status page for people."""
        now = clock.now()
        return HTMLResponse(page.render(ctx.snapshot(now), ctx.page_extras(now, links)))

    return app


def _page_settings() -> PageSettings:
    """The page's settings, a bad value refused with the variable named."""
    try:
        return load_settings(PageSettings, SERVICE)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"health page settings are invalid: {scrub(problems)}") from None


def _alert(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "source": a.job,
        "kind": a.kind,
        "severity": a.severity,
        "message": a.message,
        "created_at": to_msk(a.created_at).isoformat(),
        "notified": a.notified,
    }
