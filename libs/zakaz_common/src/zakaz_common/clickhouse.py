"""ClickHouse access through clickhouse-connect: a server over HTTP(S) or the embedded chDB engine.

With neither `CH_DSN` nor `CH_HOST` set, the warehouse is the embedded engine under
`ZAKAZ_DATA_DIR/warehouse`: the same SQL and ReplacingMergeTree semantics, no server. The
embedded engine belongs to one process; a second one gets `WarehouseBusy` naming the holder.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from zakaz_common.errors import LoadError, WarehouseBusy
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings, redact_dsn

#: Rows per insert block: large enough for columnar speed, small enough to bound memory.
INSERT_BATCH_ROWS = 100_000

#: ClickHouse error codes we branch on.
ACCESS_DENIED = 497
UNKNOWN_DATABASE = 81

_OWNER_FILE = "owner.json"
#: fcntl command to resize a pipe's buffer (Linux).
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_lock = threading.RLock()
_clients: dict[tuple[str, str], Client] = {}


@dataclass
class Warehouse:
    """An open connection to the zakaz database; every query runs in `database`."""

    client: Client
    database: str
    dsn: str
    embedded: bool
    _guard: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def display(self) -> str:
        """Where this warehouse is, with any password hidden."""
        return f"{redact_dsn(self.dsn)} (database {self.database})"

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows (DDL, INSERT … SELECT)."""
        with self._translated(sql):
            return self.client.command(sql, parameters=dict(parameters or {}))

    def rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return its rows as tuples."""
        with self._translated(sql):
            result = self.client.query(sql, parameters=dict(parameters or {}))
            return [tuple(r) for r in result.result_rows]

    def dicts(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts keyed by column name."""
        with self._translated(sql):
            result = self.client.query(sql, parameters=dict(parameters or {}))
            names = result.column_names
            return [dict(zip(names, r, strict=True)) for r in result.result_rows]

    def scalar(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run a query and return the first column of its first row (None when no row)."""
        found = self.rows(sql, parameters)
        return found[0][0] if found else None

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        *,
        batch_rows: int = INSERT_BATCH_ROWS,
    ) -> int:
        """Insert row-oriented data in blocks; returns the number of rows written."""
        for start in range(0, len(rows), batch_rows):
            block = rows[start : start + batch_rows]
            with self._translated(f"INSERT INTO {table}"):
                self.client.insert(table, list(block), column_names=list(columns))
        return len(rows)

    def insert_columns(self, table: str, data: Mapping[str, Sequence[Any]]) -> int:
        """Insert column-oriented data (one sequence per column) as one block."""
        names = list(data)
        if not names:
            return 0
        count = len(data[names[0]])
        if count == 0:
            return 0
        with self._translated(f"INSERT INTO {table}"):
            self.client.insert(
                table, [list(data[n]) for n in names], column_names=names, column_oriented=True
            )
        return count

    def insert_from_json(
        self,
        sql: str,
        structure: str,
        lines: Sequence[bytes],
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Run an `INSERT … SELECT … FROM {rows}` where `{rows}` reads JSONEachRow `lines`.

        The engine parses the lines itself (`structure` names the fields it reads; others are
        skipped unparsed), so Python never builds their objects. The embedded engine reads them
        through a named pipe in a private directory: they never touch the disk. A server gets
        them as the body of the request, read by `input()`.
        """
        clause = " SETTINGS " + ", ".join(f"{k} = {v}" for k, v in (settings or {}).items())
        clause = clause if settings else ""
        if not self.embedded:
            query = sql.replace("{rows}", f"input('{structure}')") + clause
            with self._translated(query):
                self.client.command(
                    query + " FORMAT JSONEachRow",
                    parameters=dict(parameters or {}),
                    data=b"".join(lines),
                )
            return
        with tempfile.TemporaryDirectory(prefix="zakaz-rows-") as private:
            pipe = os.path.join(private, "rows.jsonl")
            os.mkfifo(pipe, 0o600)
            failures: list[BaseException] = []
            writer = threading.Thread(
                target=_feed_pipe, args=(pipe, lines, failures), name="zakaz-rows", daemon=True
            )
            writer.start()
            query = sql.replace("{rows}", f"file('{pipe}', 'JSONEachRow', '{structure}')")
            try:
                self.command(query + clause, parameters)
            finally:
                _drain_pipe(pipe, writer)
            if failures:
                raise LoadError(f"feeding rows to the engine failed: {failures[0]}") from failures[
                    0
                ]

    def table_exists(self, name: str) -> bool:
        """Whether a table or view of that name exists in this database."""
        return bool(
            self.scalar(
                "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {n:String}",
                {"db": self.database, "n": name},
            )
        )

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        # chDB runs in our process; serialise calls so threads of one service never interleave.
        with self._guard:
            try:
                yield
            except ClickHouseError as exc:
                code = getattr(exc, "code", None)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise LoadError(
                    f"ClickHouse failed on {what.split(chr(10), maxsplit=1)[0][:120]}: {first[:500]}",
                    code=code,
                ) from exc


def _feed_pipe(pipe: str, lines: Sequence[bytes], failures: list[BaseException]) -> None:
    try:
        with open(pipe, "wb") as out:
            _widen(out.fileno())
            for line in lines:
                out.write(line)
    except BrokenPipeError:
        pass  # the engine stopped reading (its query failed): the query reports why
    except BaseException as exc:  # handed to the caller's thread
        failures.append(exc)


def _widen(fd: int) -> None:
    """Ask Linux for a 1 MB pipe buffer (64 kB by default): fewer wake-ups per page."""
    # Not Linux, or above fs.pipe-max-size: the default buffer works too.
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)


def _drain_pipe(pipe: str, writer: threading.Thread) -> None:
    """Let the writer finish: read and drop what the engine did not (its query failed early)."""
    fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while writer.is_alive():
            try:
                if not os.read(fd, 1 << 16):
                    writer.join(0.01)
            except BlockingIOError:
                writer.join(0.01)
    finally:
        os.close(fd)
    writer.join()


def open_warehouse(
    warehouse: WarehouseSettings | None = None,
    core: CoreSettings | None = None,
    *,
    database: str | None = None,
) -> Warehouse:
    """Open (and cache per process) the warehouse described by the settings."""
    warehouse = warehouse or load_settings(WarehouseSettings)
    core = core or load_settings(CoreSettings)
    dsn = warehouse.resolved_dsn(core.data_dir)
    db = database or warehouse.database_for(dsn)
    embedded = urlsplit(dsn).scheme == "chdb"
    with _lock:
        key = (dsn, db)
        client = _clients.get(key)
        if client is None:
            client = _connect(dsn, db, embedded)
            _clients[key] = client
    return Warehouse(client=client, database=db, dsn=dsn, embedded=embedded)


def embedded_path(dsn: str) -> Path:
    """The directory of an embedded (chdb://) warehouse."""
    parts = urlsplit(dsn)
    return Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)


def _connect(dsn: str, database: str, embedded: bool) -> Client:
    if embedded:
        path = embedded_path(dsn)
        path.mkdir(parents=True, exist_ok=True)
        holder = _live_owner(path)
        if holder:
            raise _busy(path, holder)
        try:
            bootstrap = clickhouse_connect.get_client(dsn=dsn, chdb_options=_chdb_options(path))
        except ClickHouseError as exc:
            raise _busy_or_load_error(path, exc) from exc
        _claim(path)
    else:
        try:
            bootstrap = clickhouse_connect.get_client(dsn=dsn, database="default")
        except ClickHouseError as exc:
            raise LoadError(
                f"cannot reach ClickHouse at {redact_dsn(dsn)}: {str(exc).splitlines()[0][:300]}; "
                "check CH_DSN / CH_HOST and that the server is up",
                code=getattr(exc, "code", None),
            ) from exc
    try:
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    except ClickHouseError as exc:
        # A restricted user (etl_writer) may not create databases; the one it uses exists.
        if getattr(exc, "code", None) != ACCESS_DENIED:
            raise LoadError(f"cannot create database {database}: {exc}") from exc
    try:
        if embedded:
            options = _chdb_options(embedded_path(dsn))
            return clickhouse_connect.get_client(dsn=dsn, database=database, chdb_options=options)
        return clickhouse_connect.get_client(dsn=dsn, database=database)
    except ClickHouseError as exc:
        raise LoadError(
            f"cannot open database {database} at {redact_dsn(dsn)}: {str(exc).splitlines()[0]}",
            code=getattr(exc, "code", None),
        ) from exc


def _chdb_options(path: Path) -> dict[str, str]:
    """Engine options of an embedded warehouse: BACKUP may write beside it (backup.py)."""
    from zakaz_common.backup import embedded_backup_dir

    return {"backups.allowed_path": str(embedded_backup_dir(path))}


def _busy_or_load_error(path: Path, exc: ClickHouseError) -> LoadError:
    text = str(exc)
    holder = _live_owner(path)
    if holder or "Cannot lock file" in text or "Another server instance" in text:
        return _busy(path, holder)
    return LoadError(f"cannot open the embedded warehouse {path}: {text.splitlines()[0][:300]}")


def _busy(path: Path, holder: dict[str, Any]) -> WarehouseBusy:
    who = f"pid {holder.get('pid')} ({holder.get('command', '?')})" if holder else "another process"
    return WarehouseBusy(
        f"the embedded warehouse {path} is in use by {who}. One process owns an embedded "
        "warehouse: stop that process, use another ZAKAZ_DATA_DIR, or run a ClickHouse "
        "server (CH_DSN) for several services at once"
    )


def _live_owner(path: Path) -> dict[str, Any]:
    """The recorded owner of an embedded warehouse if it is another process still alive."""
    holder = _read_owner(path)
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return {}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return {}
    except PermissionError:
        return holder
    return holder


def _read_owner(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / _OWNER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _claim(path: Path) -> None:
    owner = path / _OWNER_FILE
    owner.write_text(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv)[:200]}))
    owner.chmod(0o600)

    def release() -> None:
        if _read_owner(path).get("pid") == os.getpid():
            owner.unlink(missing_ok=True)

    atexit.register(release)
