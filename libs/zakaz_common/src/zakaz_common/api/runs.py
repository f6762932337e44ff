"""`/runs`: trigger a run of the source (queued on its RQ queue) and read its runs back."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from zakaz_common.api.deps import RuntimeDep, WarehouseDep, require_token
from zakaz_common.errors import ConfigError, LoadError
from zakaz_common.jobs import QueueUnavailable, RunConflict, enqueue_run
from zakaz_common.redact import scrub
from zakaz_common.runs import RunRequest, get_run, latest_runs
from zakaz_common.timeutil import to_msk

#: Most runs `GET /runs` returns at once.
MAX_LIMIT = 500

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _iso_date(value: object) -> date:
    # Only the contract's form: pydantic alone would also take timestamps and date-times.
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"dates are YYYY-MM-DD (Moscow time), got {value!r}")
    return date.fromisoformat(value)


IsoDate = Annotated[
    date,
    PlainValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2025-06-01"]}),
]


class RunBody(BaseModel):
    """The body of `POST /runs`; every field is optional (the source's default window)."""

    model_config = ConfigDict(extra="forbid")

    since: IsoDate | None = None
    to: IsoDate | None = None
    days: int | None = Field(default=None, strict=True, description="the last N days")
    dry_run: bool = Field(default=False, strict=True, description="read, but write no data")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self.to_request()
        return self

    def to_request(self) -> RunRequest:
        """The `RunRequest` this body asks for (its ConfigError becomes a validation error)."""
        try:
            return RunRequest(since=self.since, to=self.to, days=self.days, dry_run=self.dry_run)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc


class Queued(BaseModel):
    """A run accepted onto the queue."""

    run_id: str
    status: Literal["queued"] = "queued"


class Problem(BaseModel):
    """An error answer; `run_id` names the run in the way on a 409."""

    detail: str
    run_id: str | None = None


class Run(BaseModel):
    """One run as recorded in `meta_job_runs`; times are ISO 8601 in Moscow time."""

    run_id: str
    source: str
    status: Literal["queued", "running", "success", "error", "dry_run"]
    started_at: str | None
    finished_at: str | None
    rows_processed: int
    message: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        """Build from a `get_run`/`latest_runs` row."""
        return cls(
            run_id=row["run_id"],
            source=row["source"],
            status=row["status"],
            started_at=_iso(row.get("started_at")),
            finished_at=_iso(row.get("finished_at")),
            rows_processed=int(row.get("rows_processed") or 0),
            message=row.get("message") or "",
        )


def _iso(value: datetime | None) -> str | None:
    return to_msk(value).isoformat() if value is not None else None


router = APIRouter(tags=["runs"])


@router.post(
    "/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Queued,
    dependencies=[Depends(require_token)],
    responses={
        401: {"model": Problem, "description": "no bearer token"},
        403: {"model": Problem, "description": "wrong token, or none configured"},
        409: {"model": Problem, "description": "a run of this source is queued or running"},
        503: {"model": Problem, "description": "Redis or the warehouse is down"},
    },
)
def trigger_run(
    runtime: RuntimeDep,
    wh: WarehouseDep,
    response: Response,
    body: Annotated[RunBody | None, Body()] = None,
) -> Queued | JSONResponse:
    """Queue a run of this source; its worker picks it up."""
    request = (body or RunBody()).to_request()
    try:
        run_id = enqueue_run(runtime.redis(), runtime.manifest, request, wh=wh, trigger="api")
    except RunConflict as exc:
        return _problem(status.HTTP_409_CONFLICT, str(exc), run_id=exc.run_id)
    except (QueueUnavailable, RedisConnectionError, RedisTimeoutError):
        return _problem(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Redis is not reachable, so no run can be queued; nothing was queued, "
            "try again once Redis is back",
        )
    except LoadError as exc:
        return _problem(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the warehouse is not answering, so no run was queued: {scrub(str(exc))}",
        )
    response.headers["Location"] = f"/runs/{run_id}"
    return Queued(run_id=run_id)


@router.get("/runs/{run_id}", responses={404: {"model": Problem}})
def read_run(run_id: str, runtime: RuntimeDep, wh: WarehouseDep) -> Run:
    """One run of this source."""
    row = get_run(wh, run_id)
    if row is None or row["source"] != runtime.source:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id} of {runtime.source}")
    return Run.from_row(row)


@router.get("/runs")
def list_runs(
    runtime: RuntimeDep,
    wh: WarehouseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="how many runs")] = 20,
) -> list[Run]:
    """The latest runs of this source, newest first."""
    return [Run.from_row(r) for r in latest_runs(wh, runtime.source, limit=limit)]


def _problem(code: int, detail: str, *, run_id: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=code,
        content=Problem(detail=detail, run_id=run_id).model_dump(exclude_none=True),
    )
