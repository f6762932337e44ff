"""Forward-only schema migrations: numbered SQL files applied once, in order, and recorded.

The files live in `infra/clickhouse/migrations/` (shipped inside the wheel as
`zakaz_common/migrations`). `zakaz migrate` is idempotent: a second run applies nothing and
writes nothing. After the files, the `dim_city` table is synchronised with the bundled CSV.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from zakaz_common.cities import CityDirectory
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import ConfigError, LoadError

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# The ledger is the one table Python creates: migrations cannot record themselves before it exists.
_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('Europe/Moscow')
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    """One SQL file: its number, name, text and checksum."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text: an applied migration must never change."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file's statements, split on `;` at the end of a line, comments dropped."""
        lines = [ln for ln in self.sql.splitlines() if not ln.lstrip().startswith("--")]
        parts = re.split(r";\s*(?:\n|$)", "\n".join(lines))
        return [p.strip() for p in parts if p.strip()]


@dataclass
class MigrationReport:
    """What one `migrate` call did."""

    applied: list[str] = field(default_factory=list)
    cities_upserted: int = 0
    cities_retracted: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return bool(self.applied or self.cities_upserted or self.cities_retracted)


def migrations_dir() -> Path:
    """Where the SQL files are: `ZAKAZ_MIGRATIONS_DIR`, the wheel's copy, or the repo's."""
    override = os.environ.get("ZAKAZ_MIGRATIONS_DIR")
    if override:
        return Path(override)
    packaged = Path(str(resources.files("zakaz_common"))) / "migrations"
    if packaged.is_dir():
        return packaged
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "infra" / "clickhouse" / "migrations"
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        "migrations not found: set ZAKAZ_MIGRATIONS_DIR to infra/clickhouse/migrations"
    )


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every migration file, in version order; a duplicate number is an error."""
    directory = directory or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise ConfigError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ConfigError(f"two migrations share number {version:04d}")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def applied(wh: Warehouse) -> dict[int, str]:
    """Version → checksum of the migrations already applied to this warehouse."""
    wh.command(_LEDGER_DDL)
    rows = wh.rows(
        "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version"
    )
    return {int(v): str(c) for v, c in rows}


def pending(wh: Warehouse, migrations: list[Migration] | None = None) -> list[Migration]:
    """Migrations not yet applied; an applied one whose file changed is an error."""
    migrations = migrations if migrations is not None else load_migrations()
    done = applied(wh)
    todo = []
    for m in migrations:
        if m.version not in done:
            todo.append(m)
        elif done[m.version] != m.checksum:
            raise ConfigError(
                f"migration {m.version:04d}_{m.name} changed after it was applied; migrations "
                "are forward-only: restore the file and add a new numbered one"
            )
    return todo


def migrate(wh: Warehouse, migrations: list[Migration] | None = None) -> MigrationReport:
    """Apply pending migrations, then synchronise `dim_city` with the bundled city list."""
    report = MigrationReport()
    for m in pending(wh, migrations):
        for statement in m.statements():
            try:
                wh.command(statement)
            except LoadError as exc:
                raise LoadError(
                    f"migration {m.version:04d}_{m.name} failed: {exc}", code=exc.code
                ) from exc
        wh.insert(
            "schema_migrations",
            [(m.version, m.name, m.checksum, int(time.time()))],
            ["version", "name", "checksum", "applied_at"],
        )
        report.applied.append(f"{m.version:04d}_{m.name}")
    report.cities_upserted, report.cities_retracted = seed_cities(wh, CityDirectory.bundled())
    return report


def seed_cities(wh: Warehouse, directory: CityDirectory) -> tuple[int, int]:
    """Make `dim_city` equal the directory: upsert changed aliases, tombstone removed ones."""
    wanted = dict(directory.alias_rows())
    live = dict(wh.rows("SELECT alias, city FROM dim_city FINAL"))
    upserts = [(a, c) for a, c in wanted.items() if live.get(a) != c]
    removed = [a for a in live if a not in wanted]
    if not upserts and not removed:
        return 0, 0
    ver = time.time_ns()
    rows = [(a, c, ver, 0) for a, c in upserts] + [(a, live[a], ver, 1) for a in removed]
    wh.insert("dim_city", rows, ["alias", "city", "_ver", "_deleted"])
    return len(upserts), len(removed)
