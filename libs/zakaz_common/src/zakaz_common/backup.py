"""Backups of the zakaz database with ClickHouse's own BACKUP / RESTORE, kept to the newest N.

On a server the backups go to its `backups` disk (`infra/clickhouse/config.d/zakaz.xml`):
`BACKUP DATABASE zakaz TO Disk('backups', '<name>')`. The disk is a directory that this
process must see too, to list backups and delete old ones: `ZAKAZ_BACKUP_DIR` (compose mounts
the volume at `/backups` in the health container). ClickHouse has no SQL to delete a backup.

The embedded engine (chDB) writes `BACKUP … TO File('<dir>/<name>')` into `backups/` beside
its warehouse directory, provided the engine was opened with that directory as
`backups.allowed_path` (a start-up option, it cannot be set later). Zip archives are not built
into chDB, so backups are directories everywhere, one per backup, named
`<database>-<YYYYmmddTHHMMSSZ>[-n]` (UTC), and complete once their `.backup` file exists.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from zakaz_common.clickhouse import Warehouse, embedded_path, open_warehouse
from zakaz_common.errors import ConfigError, LoadError
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings

log = logging.getLogger(__name__)

#: Name of the server's backup disk (storage_configuration in infra/clickhouse/config.d).
BACKUP_DISK = "backups"

#: Where the backup disk is mounted in this process's filesystem (server deployments).
BACKUP_DIR_ENV = "ZAKAZ_BACKUP_DIR"

#: Directory beside an embedded warehouse that holds its backups (its backups.allowed_path).
EMBEDDED_BACKUP_DIRNAME = "backups"

#: The restore drill's scratch database: `restore(wh, name, database=RESTORE_DRILL_DATABASE)`.
RESTORE_DRILL_DATABASE = "zakaz_restore"

#: The marker ClickHouse writes last: a directory without it is a backup still running or failed.
BACKUP_MARKER = ".backup"

#: ClickHouse error codes of a backup destination that the configuration does not allow.
_NOT_CONFIGURED = {318, 36}

_STAMP = "%Y%m%dT%H%M%SZ"
_NAME_RE = re.compile(r"^(?P<db>[A-Za-z0-9_]+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<seq>\d+))?$")
_IDENT_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class BackupInfo:
    """One complete backup on the backup disk."""

    name: str
    database: str
    created_at: datetime
    size_bytes: int
    path: Path


def embedded_backup_dir(warehouse_dir: Path) -> Path:
    """Where an embedded warehouse's backups go: its `backups.allowed_path` when opened."""
    return (Path(warehouse_dir).resolve().parent / EMBEDDED_BACKUP_DIRNAME).resolve()


def backup_dir(wh: Warehouse, directory: Path | None = None) -> Path:
    """The directory holding the backups: `directory`, else the embedded default or `ZAKAZ_BACKUP_DIR`."""
    if directory is not None:
        return Path(directory).resolve()
    if wh.embedded:
        return embedded_backup_dir(embedded_path(wh.dsn))
    configured = os.environ.get(BACKUP_DIR_ENV, "").strip()
    if not configured:
        raise ConfigError(
            f"{BACKUP_DIR_ENV} is not set: point it at the ClickHouse `{BACKUP_DISK}` disk as "
            "mounted in this container (compose.yaml mounts it at /backups in `health`), so "
            "that backups can be listed and old ones deleted"
        )
    return Path(configured).resolve()


def list_backups(wh: Warehouse, *, directory: Path | None = None) -> list[BackupInfo]:
    """The complete backups of the warehouse's database, newest first."""
    root = backup_dir(wh, directory)
    if not root.is_dir():
        if wh.embedded:
            return []
        raise ConfigError(f"the backup directory {root} does not exist or is not a directory")
    found = []
    for entry in root.iterdir():
        match = _NAME_RE.match(entry.name)
        if not match or match.group("db") != wh.database:
            continue
        if not (entry / BACKUP_MARKER).is_file():
            continue
        created = datetime.strptime(match.group("stamp"), _STAMP).replace(tzinfo=UTC)
        found.append(BackupInfo(entry.name, wh.database, created, _size(entry), entry))
    return sorted(found, key=_newest_first_key, reverse=True)


def backup(wh: Warehouse, *, keep: int, directory: Path | None = None) -> str:
    """Back up the warehouse's database, delete all but the newest `keep`; returns the new name."""
    if keep < 1:
        raise ConfigError(f"keep must be at least 1, not {keep}")
    root = backup_dir(wh, directory)
    if wh.embedded:
        root.mkdir(parents=True, exist_ok=True)
    root = _writable(root)
    name = _new_name(root, wh.database)
    _run_backup(wh, wh.database, name, root)
    removed = prune(wh, keep=keep, directory=root)
    log.info("backup %s written to %s; removed %d old: %s", name, root, len(removed), removed)
    return name


def prune(wh: Warehouse, *, keep: int, directory: Path | None = None) -> list[str]:
    """Delete the warehouse database's backups beyond the newest `keep`; returns their names."""
    if keep < 1:
        raise ConfigError(f"keep must be at least 1, not {keep}")
    removed = []
    for old in list_backups(wh, directory=directory)[keep:]:
        shutil.rmtree(old.path)
        removed.append(old.name)
    return removed


def restore(
    wh: Warehouse, name: str, *, database: str | None = None, directory: Path | None = None
) -> str | None:
    """Replace `database` (default: the warehouse's) with backup `name`; returns the undo backup."""
    # Replacing the warehouse's own database first backs it up as it is, and returns that
    # backup's name (None when there was nothing to keep), so a wrong restore can be undone.
    root = backup_dir(wh, directory)
    wanted = next((b for b in list_backups(wh, directory=root) if b.name == name), None)
    if wanted is None:
        known = ", ".join(b.name for b in list_backups(wh, directory=root)[:10]) or "none"
        raise ConfigError(f"no backup named {name!r} in {root}; the latest: {known}")
    target = database or wh.database
    if not _IDENT_RE.match(target):
        raise ConfigError(f"{target!r} is not a database name (letters, digits, underscores)")
    objects = _objects(wh, target)
    safety = None
    if objects and target == wh.database:
        safety = _new_name(root, wh.database)
        _run_backup(wh, wh.database, safety, root)
        log.info("kept %s as it was before the restore in backup %s", target, safety)
    # Views first: a table may not be dropped while a view still names it.
    for table, _engine in sorted(objects, key=lambda o: o[1] != "View"):
        wh.command(f"DROP TABLE IF EXISTS `{target}`.`{table}` SYNC")
    rename = f" AS `{target}`" if target != wanted.database else ""
    try:
        _status(
            wh,
            f"RESTORE DATABASE `{wanted.database}`{rename} FROM {_destination(wh, name, root)}",
            expect="RESTORED",
            what=f"restore of {name} into {target}",
        )
    except LoadError as exc:
        undo = f"; the data before it is in backup {safety}" if safety else ""
        raise LoadError(f"restore of {name} into {target} failed: {exc}{undo}") from exc
    log.info("restored %s into %s", name, target)
    return safety


def _newest_first_key(info: BackupInfo) -> tuple[datetime, int]:
    # Names of one second differ by a counter that may reuse a pruned slot: the marker's
    # mtime breaks the tie in the order the backups were really written.
    return info.created_at, (info.path / BACKUP_MARKER).stat().st_mtime_ns


def _run_backup(wh: Warehouse, database: str, name: str, root: Path) -> None:
    sql = f"BACKUP DATABASE `{database}` TO {_destination(wh, name, root)}"
    _status(wh, sql, expect="BACKUP_CREATED", what=f"backup {name} of {database}")
    if not (root / name / BACKUP_MARKER).is_file():
        raise ConfigError(
            f"ClickHouse wrote backup {name}, but it is not in {root}: {BACKUP_DIR_ENV} must be "
            f"where the `{BACKUP_DISK}` disk is mounted in this container"
        )


def _status(wh: Warehouse, sql: str, *, expect: str, what: str) -> None:
    try:
        rows = wh.rows(sql)
    except LoadError as exc:
        if exc.code in _NOT_CONFIGURED:
            raise ConfigError(
                f"{exc}. A server needs the `{BACKUP_DISK}` disk and backups.allowed_disk "
                "(infra/clickhouse/config.d/zakaz.xml); the embedded engine must be opened with "
                f"backups.allowed_path set to the `{EMBEDDED_BACKUP_DIRNAME}` directory beside "
                "its warehouse"
            ) from exc
        raise
    status = str(rows[0][1]) if rows and len(rows[0]) > 1 else "?"
    if status != expect:
        raise LoadError(f"{what}: ClickHouse answered {status}, not {expect}")


def _destination(wh: Warehouse, name: str, root: Path) -> str:
    if wh.embedded:
        return f"File({_literal(str(root / name))})"
    return f"Disk({_literal(BACKUP_DISK)}, {_literal(name)})"


def _objects(wh: Warehouse, database: str) -> list[tuple[str, str]]:
    rows = wh.rows(
        "SELECT name, engine FROM system.tables WHERE database = {db:String}", {"db": database}
    )
    return [(str(n), str(e)) for n, e in rows]


def _new_name(root: Path, database: str) -> str:
    base = f"{database}-{datetime.now(UTC).strftime(_STAMP)}"
    name, seq = base, 1
    while (root / name).exists():
        seq += 1
        name = f"{base}-{seq}"
    return name


def _writable(root: Path) -> Path:
    if not root.is_dir():
        raise ConfigError(f"the backup directory {root} does not exist or is not a directory")
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(
            f"the backup directory {root} is not writable by uid {os.getuid()}: old backups "
            "could not be deleted (the clickhouse container runs as the same uid, see compose.yaml)"
        )
    return root


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: How many daily backups the scheduled job keeps unless ZAKAZ_BACKUP_KEEP says otherwise.
DEFAULT_KEEP = 14


def keep_setting() -> int:
    """`ZAKAZ_BACKUP_KEEP` (default 14)."""
    raw = os.environ.get("ZAKAZ_BACKUP_KEEP", "").strip()
    try:
        return int(raw) if raw else DEFAULT_KEEP
    except ValueError as exc:
        raise ConfigError(f"ZAKAZ_BACKUP_KEEP={raw!r} is not a whole number") from exc


def scheduled_backup() -> dict[str, object]:
    """The daily job: back up as `CH_BACKUP_USER` when set (else the ETL user), keep N."""
    core = load_settings(CoreSettings)
    settings = load_settings(WarehouseSettings)
    user = os.environ.get("CH_BACKUP_USER", "").strip()
    if user:
        settings = settings.model_copy(
            update={"user": user, "password": SecretStr(os.environ.get("CH_BACKUP_PASSWORD", ""))}
        )
    wh = open_warehouse(settings, core)
    keep = keep_setting()
    name = backup(wh, keep=keep)
    return {"backup": name, "keep": keep}
