"""`/healthz`: 200 when the warehouse, Redis and a live worker of this source's queue answer."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError

from zakaz_common.api.deps import Runtime, RuntimeDep
from zakaz_common.redact import scrub
from zakaz_common.worker import live_workers

OK = "ok"

Part = Literal["warehouse", "redis", "worker"]


class Health(BaseModel):
    """The service's state: `failing` names each part that does not answer."""

    status: Literal["ok", "unavailable"]
    source: str
    failing: list[Part]
    checks: dict[Part, str]


router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(runtime: RuntimeDep) -> JSONResponse:
    """200 when the service, its worker and its dependencies answer; else 503 naming the part."""
    health = check(runtime)
    code = 200 if health.status == "ok" else 503
    return JSONResponse(status_code=code, content=health.model_dump())


def check(runtime: Runtime) -> Health:
    """Check the warehouse, Redis and the worker of the runtime's source."""
    checks: dict[Part, str] = {
        "warehouse": _warehouse_state(runtime),
        "redis": _redis_state(runtime),
    }
    if checks["redis"] == OK:
        checks["worker"] = worker_problem(runtime) or OK
    else:
        checks["worker"] = "unknown while Redis is down"
    failing: list[Part] = [part for part, state in checks.items() if state != OK]
    return Health(
        status="unavailable" if failing else "ok",
        source=runtime.source,
        failing=failing,
        checks=checks,
    )


def _warehouse_state(runtime: Runtime) -> str:
    try:
        runtime.warehouse().scalar("SELECT 1")
    except Exception as exc:  # whatever the driver raised, the warehouse does not answer
        return f"not answering: {_first_line(exc)}"
    return OK


def _redis_state(runtime: Runtime) -> str:
    try:
        runtime.redis().ping()
    except (RedisError, OSError) as exc:
        return f"not reachable: {_first_line(exc)}"
    return OK


def worker_problem(runtime: Runtime) -> str:
    """Why no worker serves the source's queue, or "" when one does."""
    local = runtime.local_worker() if runtime.local_worker is not None else None
    if local:
        return local
    try:
        alive = live_workers(runtime.redis(), runtime.source)
    except (RedisError, OSError) as exc:
        return f"unknown: {_first_line(exc)}"
    if not alive:
        return f"no worker with a fresh heartbeat serves queue {runtime.source!r}"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return scrub(text[0][:300]) if text else type(exc).__name__
