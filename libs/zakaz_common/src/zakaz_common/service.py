"""The control API of a source (CONTRACT §3), built from its manifest: `create_app(manifest)`.

`POST /runs` queues a run on the source's RQ queue (bearer token `ZAKAZ_API_TOKEN`);
`GET /runs/{run_id}` and `GET /runs` read `meta_job_runs`; `GET /healthz` checks the
warehouse, Redis and the queue's worker; `GET /metrics` is computed on scrape. OpenAPI docs
are at `/docs`. Settings and connections are made on first use, never at import. Request
bodies over 64 KB are refused with 413 before anything parses them (`api.limits`).
"""

from __future__ import annotations

from fastapi import FastAPI

from zakaz_common.api import health, metrics, runs
from zakaz_common.api.deps import Runtime
from zakaz_common.api.limits import BodyLimit
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest


def create_app(
    manifest: SourceManifest,
    *,
    redis_url: str | None = None,
    warehouse: Warehouse | None = None,
) -> FastAPI:
    """The control API of one source; `redis_url`/`warehouse` default to the settings."""
    app = FastAPI(
        title=f"zakaz {manifest.name}",
        summary=f"Control API of the {manifest.title} source: trigger runs, read them, health.",
        version="1",
    )
    runtime = Runtime(manifest, redis_url_override=redis_url, warehouse_override=warehouse)
    app.state.runtime = runtime
    app.state.metrics = metrics.registry_for(runtime)
    app.include_router(runs.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.add_middleware(BodyLimit)
    return app
