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
import logging
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
from zakaz_common.locks import pid_alive
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings, redact_dsn
from zakaz_common.timeutil import MSK

#: Rows per insert block: large enough for columnar speed, small enough to bound memory.
INSERT_BATCH_ROWS = 100_000
#: Bytes of lines per query when a server reads a feed.
FEED_BATCH_BYTES = 64 << 20

#: ClickHouse error codes we branch on.
ACCESS_DENIED = 497
UNKNOWN_DATABASE = 81

#: The zone every DateTime is read back in (CONTRACT §4: every column is Moscow time). The
#: embedded engine reports a plain `DateTime('Europe/Moscow')` column without its zone, which
#: the driver would hand back naive in UTC beside aware Moscow values of Nullable columns;
#: with this, every moment a query returns is an aware Moscow datetime.
_READ_TZ = MSK

_OWNER_FILE = "owner.json"
#: fcntl command to resize a pipe's buffer (Linux).
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_lock = threading.RLock()

#: The logger clickhouse-connect warns on before raising a failed request; zakaz reports the
#: error it raises (translated, one line), so the warning is only a second, vaguer line.
_DRIVER_LOGGER = "clickhouse_connect.driver._backend.http_sync"


class _DropDriverWarning(logging.Filter):
    """Drops clickhouse-connect's "Unexpected Http Driver Exception" warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to keep the record."""
        return record.getMessage() != "Unexpected Http Driver Exception"


logging.getLogger(_DRIVER_LOGGER).addFilter(_DropDriverWarning())
_clients: dict[tuple[str, str], Client] = {}


@dataclass
class Warehouse:
    """An open connection to the zakaz database; every query runs in `database`."""

    client: Client
    database: str
    dsn: str
    embedded: bool
    _guard: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: The thread writing an open embedded feed (its query holds the guard meanwhile).
    _feeder: int | None = field(default=None, repr=False)

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
            result = self.client.query(sql, parameters=dict(parameters or {}), query_tz=_READ_TZ)
            return [tuple(r) for r in result.result_rows]

    def dicts(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts keyed by column name."""
        with self._translated(sql):
            result = self.client.query(sql, parameters=dict(parameters or {}), query_tz=_READ_TZ)
            names = result.column_names
            return [dict(zip(names, r, strict=True)) for r in result.result_rows]

    def table(
        self, sql: str, *, settings: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a query; its column names and (at most `limit`) rows."""
        with self._translated(sql):
            result = self.client.query(
                sql, settings=dict(settings) if settings else None, query_tz=_READ_TZ
            )
            rows = result.result_rows if limit is None else result.result_rows[:limit]
            return list(result.column_names), [tuple(r) for r in rows]

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

    def feed(
        self,
        sql: str,
        structure: str,
        fmt: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Feed:
        """Start an `INSERT … SELECT … FROM {rows}` whose `{rows}` are the lines written to the
        returned feed, in format `fmt` with columns `structure`; `Feed.close` ends it.

        The embedded engine runs one query for the whole feed, reading the lines through a
        named pipe in a private directory as they are written (they never touch the disk, and
        parsing overlaps with whatever produces them). While it runs, the thread that opened
        the feed must not use the warehouse otherwise: it would wait on its own query, so it
        gets an error instead. A server gets the lines as request bodies read by `input()`, a
        few tens of megabytes per query.
        """
        clause = " SETTINGS " + ", ".join(f"{k} = {v}" for k, v in (settings or {}).items())
        clause = clause if settings else ""
        if not self.embedded:
            query = sql.replace("{rows}", f"input('{structure}')") + clause + f" FORMAT {fmt}"
            return _BatchFeed(self, query, dict(parameters or {}))
        return _PipeFeed(self, sql, f"'{fmt}', '{structure}'", clause, dict(parameters or {}))

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
        if self._feeder == threading.get_ident():
            raise RuntimeError(
                "the warehouse is reading this thread's feed: close the feed before other queries"
            )
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


class Feed:
    """Lines on their way into one `INSERT … SELECT` (`Warehouse.feed`)."""

    def write(self, *parts: bytes) -> None:
        """Send one line, in parts (the last ends with a newline)."""
        raise NotImplementedError

    def close(self) -> None:
        """Send what is left and wait for the insert; `LoadError` when the engine failed."""
        raise NotImplementedError

    def abort(self) -> None:
        """End the feed without waiting to hear how the insert went (the caller is failing)."""
        with contextlib.suppress(LoadError):
            self.close()


class _PipeFeed(Feed):
    """The embedded engine reads the lines from a named pipe while they are written."""

    def __init__(
        self, wh: Warehouse, sql: str, source: str, clause: str, parameters: dict[str, Any]
    ) -> None:
        if wh._feeder is not None:
            raise RuntimeError("the warehouse is already reading a feed")
        self._wh = wh
        self._private = tempfile.TemporaryDirectory(prefix="zakaz-rows-")
        self._pipe = os.path.join(self._private.name, "rows")
        os.mkfifo(self._pipe, 0o600)
        self._query = sql.replace("{rows}", f"file('{self._pipe}', {source})") + clause
        self._parameters = parameters
        self._out: Any = None
        self._broken = False
        self._closed = threading.Event()
        self._failure: BaseException | None = None
        wh._feeder = threading.get_ident()
        self._reader = threading.Thread(target=self._read, name="zakaz-feed", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            self._wh.command(self._query, self._parameters)
        except BaseException as exc:  # handed to the writer by `close`
            self._failure = exc
        finally:
            self._drain()

    def _drain(self) -> None:
        # The engine stopped reading (done, or failed before or while reading): take what the
        # writer still sends, so that neither its open nor its writes wait for ever.
        fd = os.open(self._pipe, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while True:
                try:
                    if os.read(fd, 1 << 16):
                        continue
                except BlockingIOError:
                    pass
                if self._closed.is_set():
                    return
                self._closed.wait(0.005)
        finally:
            os.close(fd)

    def write(self, *parts: bytes) -> None:
        if self._broken or self._closed.is_set():
            return
        try:
            if self._out is None:
                self._out = open(self._pipe, "wb")  # noqa: SIM115 (closed by `close`)
                _widen(self._out.fileno())
            for part in parts:
                self._out.write(part)
        except BrokenPipeError:
            self._broken = True  # the engine stopped reading: `close` reports why

    def close(self) -> None:
        if self._closed.is_set():
            return
        try:
            if self._out is None and not self._broken:
                self._out = open(self._pipe, "wb")  # noqa: SIM115 (an empty feed: EOF now)
            if self._out is not None:
                with contextlib.suppress(BrokenPipeError):
                    self._out.close()
        finally:
            self._closed.set()
            self._reader.join()
            self._wh._feeder = None
            self._private.cleanup()
        # The engine keeps what it freed while reading for a while; a long read leaves hundreds
        # of megabytes this process does not use. They go back to the system now.
        with contextlib.suppress(LoadError):
            self._wh.command("SYSTEM JEMALLOC PURGE")
        if self._failure is not None:
            failure = self._failure
            if isinstance(failure, LoadError):
                raise failure
            raise LoadError(f"the engine could not read the feed: {failure}") from failure


class _BatchFeed(Feed):
    """A server gets the lines in request bodies of about `FEED_BATCH_BYTES`."""

    def __init__(self, wh: Warehouse, query: str, parameters: dict[str, Any]) -> None:
        self._wh, self._query, self._parameters = wh, query, parameters
        self._lines: list[bytes] = []
        self._size = 0
        self._failure: LoadError | None = None

    def write(self, *parts: bytes) -> None:
        self._lines += parts
        self._size += sum(len(p) for p in parts)
        if self._size >= FEED_BATCH_BYTES:
            self._send()

    def _send(self) -> None:
        lines, self._lines, self._size = self._lines, [], 0
        if not lines or self._failure is not None:
            return
        try:
            with self._wh._translated(self._query):
                self._wh.client.command(
                    self._query, parameters=self._parameters, data=b"".join(lines)
                )
        except LoadError as exc:
            self._failure = exc  # the rest is not sent: `close` reports the failure

    def close(self) -> None:
        self._send()
        if self._failure is not None:
            raise self._failure


def _widen(fd: int) -> None:
    """Ask Linux for a 1 MB pipe buffer (64 kB by default): fewer wake-ups per page."""
    # Not Linux, or above fs.pipe-max-size: the default buffer works too.
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)


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
            client = _connect(dsn, db, embedded, _Timeouts.of(warehouse))
            _clients[key] = client
    return Warehouse(client=client, database=db, dsn=dsn, embedded=embedded)


def embedded_path(dsn: str) -> Path:
    """The directory of an embedded (chdb://) warehouse."""
    parts = urlsplit(dsn)
    return Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)


@dataclass(frozen=True)
class _Timeouts:
    """clickhouse-connect's timeouts of a server connection (seconds)."""

    connect: int
    send_receive: int

    @classmethod
    def of(cls, settings: WarehouseSettings) -> _Timeouts:
        return cls(settings.connect_timeout_seconds, settings.send_receive_timeout_seconds)

    def options(self) -> dict[str, Any]:
        return {"connect_timeout": self.connect, "send_receive_timeout": self.send_receive}


def _connect(dsn: str, database: str, embedded: bool, timeouts: _Timeouts) -> Client:
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
            bootstrap = clickhouse_connect.get_client(
                dsn=dsn, database="default", **timeouts.options()
            )
        except ClickHouseError as exc:
            raise _unreachable(dsn, exc, timeouts) from exc
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
        return clickhouse_connect.get_client(dsn=dsn, database=database, **timeouts.options())
    except ClickHouseError as exc:
        raise LoadError(
            f"cannot open database {database} at {redact_dsn(dsn)}: {str(exc).splitlines()[0]}",
            code=getattr(exc, "code", None),
        ) from exc


def _unreachable(dsn: str, exc: ClickHouseError, timeouts: _Timeouts) -> LoadError:
    """The one-line error of a server that cannot be reached or does not answer."""
    text = str(exc)
    code = getattr(exc, "code", None)
    nothing = "nothing was done, and no run can be recorded there until it answers"
    if "timed out" in text.lower():
        return LoadError(
            f"ClickHouse at {redact_dsn(dsn)} did not answer in time (connect timeout "
            f"{timeouts.connect} s, read timeout {timeouts.send_receive} s: "
            f"CH_CONNECT_TIMEOUT_SECONDS, CH_SEND_RECEIVE_TIMEOUT_SECONDS): {nothing}; check "
            "that the server is up and not overloaded",
            code=code,
        )
    first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    return LoadError(
        f"cannot reach ClickHouse at {redact_dsn(dsn)}: {first}; {nothing}; check CH_DSN / "
        "CH_HOST and that the server is up",
        code=code,
    )


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
        "warehouse: stop that process, use another ZAKAZ_DATA_DIR, run `zakaz up` (the whole "
        "platform in one process; status, check, run and sql then go through it), or run a "
        "ClickHouse server (CH_DSN) for several services at once"
    )


def _live_owner(path: Path) -> dict[str, Any]:
    """The recorded owner of an embedded warehouse if it is another process still alive."""
    holder = _read_owner(path)
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return {}
    return holder if pid_alive(pid) else {}


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
