"""Reaching a running `zakaz up` from another process: its control file, client and local routes.

An embedded warehouse belongs to one process, so while `zakaz up` runs, `zakaz status`, `check`,
`run` and `sql` cannot open it themselves. `zakaz up` writes `control.json` beside the warehouse
(mode 600: its URL, pid and a random token only this user can read) and serves `/local/...`
routes that answer with the token in the `X-Zakaz-Control` header; the commands find the file,
check that its process is alive, and ask it instead. The file is removed when `zakaz up` stops;
one left by a killed process names a dead pid and is ignored.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import redis
from fastapi import APIRouter, Depends, Header, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from zakaz_common.checks import run_checks
from zakaz_common.clickhouse import Warehouse, embedded_path
from zakaz_common.errors import ConfigError, ZakazError
from zakaz_common.jobs import QueueUnavailable, RunConflict, enqueue_run
from zakaz_common.locks import pid_alive
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import RunRequest
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings
from zakaz_common.status import SourceStatus, source_statuses

#: The control file's name, beside the embedded warehouse's data.
CONTROL_FILE = "control.json"

#: The request header carrying the control token.
CONTROL_HEADER = "X-Zakaz-Control"

#: Longest a read-only query through `/local/sql` may return, in rows: a terminal, not an export.
SQL_MAX_ROWS = 10_000

#: Seconds a request to the running process may take (a check or a query over a big table).
REQUEST_TIMEOUT_SECONDS = 120.0


class ControlUnavailable(ZakazError):
    """The running `zakaz up` did not answer."""


@dataclass(frozen=True)
class Control:
    """A running `zakaz up`: where it listens and the token its local routes want."""

    url: str
    token: str
    pid: int

    def get(self, path: str, *, timeout: float = REQUEST_TIMEOUT_SECONDS) -> Any:
        """GET a local route; its JSON."""
        return self._call("GET", path, None, timeout)

    def post(
        self, path: str, body: Mapping[str, Any], *, timeout: float = REQUEST_TIMEOUT_SECONDS
    ) -> Any:
        """POST JSON to a local route; its JSON."""
        return self._call("POST", path, body, timeout)

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None, timeout: float) -> Any:
        try:
            answer = httpx.request(
                method,
                self.url.rstrip("/") + path,
                json=body,
                headers={CONTROL_HEADER: self.token},
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise ControlUnavailable(
                f"`zakaz up` (pid {self.pid}) owns the warehouse but did not answer at "
                f"{self.url}: {type(exc).__name__}; is it still starting, or stuck?"
            ) from exc
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail", answer.text)
            except ValueError:
                detail = answer.text
            raise ZakazError(str(detail)[:2000])
        return answer.json()


def control_file(warehouse_dir: Path) -> Path:
    """Where the control file of the warehouse in `warehouse_dir` lives."""
    return warehouse_dir / CONTROL_FILE


def new_token() -> str:
    """A fresh control token."""
    return secrets.token_urlsafe(32)


def announce(warehouse_dir: Path, url: str, token: str) -> tuple[Control, Callable[[], None]]:
    """Write the control file of this process; returns it and the function removing it."""
    control = Control(url=url, token=token, pid=os.getpid())
    path = control_file(warehouse_dir)
    temp = path.with_name(f".{CONTROL_FILE}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(control), handle)
    temp.replace(path)

    def withdraw() -> None:
        if _read(path).get("pid") == control.pid:
            path.unlink(missing_ok=True)

    return control, withdraw


def running(data_dir: Path | None = None) -> Control | None:
    """The `zakaz up` that owns this environment's embedded warehouse, if one is alive."""
    core = load_settings(CoreSettings)
    dsn = load_settings(WarehouseSettings).resolved_dsn(data_dir or core.data_dir)
    if urlsplit(dsn).scheme != "chdb":
        return None  # a ClickHouse server serves every process: nothing to go through
    found = _read(control_file(embedded_path(dsn)))
    pid, url, token = found.get("pid"), found.get("url"), found.get("token")
    if not (isinstance(pid, int) and isinstance(url, str) and isinstance(token, str)):
        return None
    if pid == os.getpid() or not pid_alive(pid):
        return None
    return Control(url=url, token=token, pid=pid)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- read-only SQL -------------------------------------------------------------------------

#: Statement kinds `zakaz sql` runs, as the engine's parser names them (`EXPLAIN AST`).
READ_ONLY_STATEMENTS = (
    "SelectWithUnionQuery",
    "ShowTables",
    "DescribeQuery",
    "ExistsTableQuery",
    "ShowCreateTableQuery",
)

#: Table functions that reach outside the warehouse (files, URLs, other servers, programs).
OUTSIDE_FUNCTIONS = frozenset(
    {
        "file",
        "url",
        "urlcluster",
        "s3",
        "s3cluster",
        "gcs",
        "azureblobstorage",
        "hdfs",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "sqlite",
        "mongodb",
        "redis",
        "jdbc",
        "odbc",
        "executable",
        "input",
        "iceberg",
        "deltalake",
        "hudi",
    }
)

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line>(--|\#)[^\n]*)
  | (?P<block>/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<semicolon>;)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def read_only_statement(query: str) -> str:
    """The one read-only statement in `query` (a trailing `;` dropped); ConfigError otherwise.

    The text is tokenised here (strings, quoted names and comments skipped) so that a `;`, an
    `INTO OUTFILE`, a `SETTINGS` clause or an outside table function cannot hide; the engine's
    own parser then says which statement it is.
    """
    words: list[tuple[str, str]] = []  # (lower-case word, what follows it)
    end = None
    tokens = list(_TOKEN.finditer(query))
    for i, match in enumerate(tokens):
        kind = match.lastgroup
        if kind == "semicolon":
            if any(t.lastgroup not in {"space", "line", "block"} for t in tokens[i + 1 :]):
                raise ConfigError("one statement at a time: the query has a `;` in the middle")
            end = match.start()
            break
        if kind == "word":
            following = next(
                (
                    t.group()
                    for t in tokens[i + 1 :]
                    if t.lastgroup not in {"space", "line", "block"}
                ),
                "",
            )
            words.append((match.group().lower(), following))
        if kind == "other" and match.group() in "'\"`":
            raise ConfigError("the query has an unclosed quote")
    lowered = [w for w, _ in words]
    if "outfile" in lowered:
        raise ConfigError("INTO OUTFILE is not allowed: `zakaz sql` only reads")
    if "settings" in lowered:
        raise ConfigError("a SETTINGS clause is not allowed in `zakaz sql`")
    outside = sorted({w for w, nxt in words if w in OUTSIDE_FUNCTIONS and nxt == "("})
    if outside:
        raise ConfigError(
            f"table function {outside[0]}() reaches outside the warehouse: not allowed in `zakaz sql`"
        )
    statement = (query[:end] if end is not None else query).strip()
    if not statement:
        raise ConfigError("the query is empty")
    return statement


def run_read_only(wh: Warehouse, query: str, *, max_rows: int = SQL_MAX_ROWS) -> dict[str, Any]:
    """Run one read-only statement: `{"columns", "rows", "truncated"}` with JSON-simple values."""
    statement = read_only_statement(query)
    try:
        tree = wh.rows(f"EXPLAIN AST {statement}")
    except ZakazError as exc:
        raise ConfigError(f"the query does not parse: {_first_line(str(exc))}") from exc
    kind = str(tree[0][0]).split(" ", 1)[0] if tree else ""
    if kind not in READ_ONLY_STATEMENTS:
        raise ConfigError(
            "`zakaz sql` only reads (SELECT, WITH … SELECT, SHOW, SHOW CREATE, DESCRIBE, EXISTS); "
            f"this is {kind or 'empty'}"
        )
    settings = None if wh.embedded else {"readonly": 1, "max_result_rows": max_rows + 1}
    columns, found = wh.table(statement, settings=settings, limit=max_rows + 1)
    rows = [[_plain(v) for v in row] for row in found]
    return {"columns": columns, "rows": rows[:max_rows], "truncated": len(rows) > max_rows}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"


def _plain(value: Any) -> Any:
    """A value as JSON can carry it (money and dates as text, as ClickHouse prints them)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


# --- statuses over the wire ----------------------------------------------------------------


def status_to_json(row: SourceStatus) -> dict[str, Any]:
    """One source's status as JSON-simple data."""
    return {k: _plain(v) for k, v in asdict(row).items()}


def status_from_json(data: Mapping[str, Any]) -> SourceStatus:
    """The inverse of `status_to_json`."""
    values = dict(data)
    for key in ("last_started_at", "last_success_at"):
        if isinstance(values.get(key), str):
            values[key] = datetime.fromisoformat(values[key])
    if isinstance(values.get("last_data_date"), str):
        values["last_data_date"] = date.fromisoformat(values["last_data_date"])
    return SourceStatus(**values)


# --- the local routes ----------------------------------------------------------------------


class LocalRun(BaseModel):
    """The body of `POST /local/runs`: what `zakaz run` was given."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=64)
    since: date | None = None
    to: date | None = None
    days: int | None = None
    dry_run: bool = False


class LocalQuery(BaseModel):
    """The body of `POST /local/sql`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(max_length=60_000)


def local_router(
    *,
    token: str,
    warehouse: Warehouse,
    manifests: Iterable[SourceManifest],
    redis_url: str,
) -> APIRouter:
    """The `/local/...` routes of a running `zakaz up`, answering only with its token."""
    installed = {m.name: m for m in manifests}
    conn = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    started_at = time.time()

    def authorised(
        given: Annotated[str | None, Header(alias=CONTROL_HEADER)] = None,
    ) -> None:
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the control token is missing or wrong")

    router = APIRouter(prefix="/local", dependencies=[Depends(authorised)], include_in_schema=False)

    def _zakaz(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from exc
        except ZakazError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc

    @router.get("/ping")
    def ping() -> dict[str, Any]:
        return {"pid": os.getpid(), "started_at": started_at, "warehouse": warehouse.display}

    @router.get("/status")
    def statuses() -> list[dict[str, Any]]:
        rows = _zakaz(lambda: source_statuses(warehouse, installed.values(), redis_url))
        return [status_to_json(r) for r in rows]

    @router.get("/check")
    def check() -> list[dict[str, Any]]:
        results = _zakaz(lambda: run_checks(warehouse, installed.values()))
        return [{k: _plain(v) for k, v in r.__dict__.items()} for r in results]

    @router.post("/sql")
    def sql(body: LocalQuery) -> dict[str, Any]:
        return dict(_zakaz(lambda: run_read_only(warehouse, body.query)))

    @router.post("/runs", status_code=status.HTTP_202_ACCEPTED)
    def start_run(body: LocalRun) -> dict[str, str]:
        manifest = installed.get(body.source)
        if manifest is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"{body.source} is not a source this process runs"
            )
        try:
            request = RunRequest(body.since, body.to, body.days, body.dry_run)
            run_id = enqueue_run(conn, manifest, request, wh=warehouse, trigger="cli", retry=False)
        except RunConflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except QueueUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"run_id": run_id}

    @router.get("/runs/{run_id}")
    def run_state(run_id: str) -> dict[str, Any]:
        try:
            job = Job.fetch(run_id, connection=conn)
        except NoSuchJobError:
            return {"state": "unknown", "summary": _recorded(warehouse, run_id)}
        except redis.RedisError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"Redis: {exc}") from exc
        state = job.get_status()
        if state == JobStatus.FINISHED:
            value = job.return_value()
            return {"state": "finished", "summary": value if isinstance(value, dict) else None}
        if state in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            return {"state": "failed", "summary": _recorded(warehouse, run_id)}
        return {"state": "started" if state == JobStatus.STARTED else "queued", "summary": None}

    return router


def _recorded(wh: Warehouse, run_id: str) -> dict[str, Any] | None:
    """A run's summary as `meta_job_runs` recorded it (a job that died without returning one)."""
    found = wh.dicts(
        "SELECT job, status, rows_processed, message, metrics FROM meta_job_runs "
        "WHERE run_id = {id:String} LIMIT 1",
        {"id": run_id},
    )
    if not found:
        return None
    row = found[0]
    try:
        metrics = json.loads(row["metrics"] or "{}")
    except ValueError:
        metrics = {}
    return {
        "source": row["job"],
        "run_id": run_id,
        "status": row["status"],
        "rows_processed": int(row["rows_processed"] or 0),
        "rows_rejected": int(metrics.get("rows_rejected") or 0),
        "duration_ms": int(metrics.get("duration_ms") or 0),
        "message": row["message"],
    }
