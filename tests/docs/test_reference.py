"""docs/reference.md keeps in step with the code: commands, options, settings, views, endpoints, metrics.

Each test reads the real thing (the Typer app's click tree, the pydantic-settings classes and the
environment reads of every package, the views of a freshly migrated warehouse, the routes of the
real apps, the collectors of the real registries) and looks for each name in its section of the
reference, so a command, option, variable, column, route or metric added without a word there
fails here.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from zakaz_common.api.deps import Runtime
from zakaz_common.api.metrics import registry_for
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse
from zakaz_common.control import local_router
from zakaz_common.deadline import override_variable
from zakaz_common.manifest import manifests
from zakaz_common.service import create_app as create_source_app
from zakaz_health.app import create_app as create_health_app
from zakaz_health.metrics import METRIC_NAMES, build_registry
from zakaz_health.state import collect

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference.md"
#: Where the code lives whose settings, environment reads and names must be documented.
PACKAGES = [
    ROOT / "libs" / "zakaz_common" / "src" / "zakaz_common",
    *sorted(ROOT.glob("services/*/src/zakaz_*")),
]
#: Nothing listens here: Redis-dependent parts report themselves down, which is all we need.
NO_REDIS = "redis://127.0.0.1:9/0"


def _doc() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under the heading whose title is `title`, up to the next heading of its level."""
    lines = _doc().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"(#+) (.*)$", line)
        if match and match.group(2).strip() == title:
            level = len(match.group(1))
            body = []
            for rest in lines[i + 1 :]:
                other = re.match(r"(#+) ", rest)
                if other and len(other.group(1)) <= level:
                    break
                body.append(rest)
            return "\n".join(body)
    raise AssertionError(f"docs/reference.md has no heading {title!r}")


def mentions(text: str, name: str) -> bool:
    """Whether `name` stands in `text` as a whole token (not as part of a longer name)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


# --- commands ------------------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the click tree (Typer's own copy of click: duck-typed)."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app), ("zakaz",)))


def test_the_command_tree_is_walked() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"zakaz", "zakaz run", "zakaz up", "zakaz sql"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_is_documented(path: tuple[str, ...], command: Any) -> None:
    text = section(f"`{' '.join(path)}`")
    missing = []
    for param in command.params:
        option = param.param_type_name == "option"
        names = [*param.opts, *param.secondary_opts] if option else [param.name.upper()]
        missing += [n for n in names if not mentions(text, n)]
    assert not missing, f"{' '.join(path)}: {missing} are not in its section of docs/reference.md"


# --- environment variables -----------------------------------------------------------------


def _import_everything() -> None:
    for package_dir in PACKAGES:
        package = importlib.import_module(package_dir.name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_dir.name}."):
            if not info.name.endswith("__main__"):  # `python -m zakaz_common` runs the CLI
                importlib.import_module(info.name)


def _settings_classes() -> list[type[BaseSettings]]:
    _import_everything()
    found: list[type[BaseSettings]] = []
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("zakaz_"):
            found.append(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__name__}")


def env_names(cls: type[BaseSettings]) -> list[str]:
    """The environment variables a settings class reads, as pydantic-settings names them."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names = []
    for field_name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names += [c for c in alias.choices if isinstance(c, str)]
        else:
            names.append(f"{prefix}{field_name}".upper())
    return names


SETTINGS = _settings_classes()


def test_the_settings_classes_are_found() -> None:
    found = {c.__name__ for c in SETTINGS}
    assert {"CoreSettings", "WarehouseSettings", "VkAdsSettings", "AlertSettings"} <= found
    assert len(found) >= 8


@pytest.mark.parametrize("cls", SETTINGS, ids=[c.__name__ for c in SETTINGS])
def test_every_setting_is_documented(cls: type[BaseSettings]) -> None:
    text = section("2. Environment variables")
    missing = [n for n in env_names(cls) if not mentions(text, n)]
    assert not missing, f"{cls.__name__} reads {missing}, not in docs/reference.md §2"


def _environment_reads(path: Path) -> Iterator[str]:
    """Names read with `os.environ.get`, `os.getenv` or `os.environ[...]` in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def name_of(expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value
        if isinstance(expr, ast.Name):
            return constants.get(expr.id)
        return None

    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in {"os.environ.get", "os.getenv", "os.environ.pop"}:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        name = name_of(key) if key is not None else None
        if name:
            yield name


def test_every_variable_read_from_the_environment_is_documented() -> None:
    text = section("2. Environment variables")
    read = {
        name
        for package in PACKAGES
        for p in package.rglob("*.py")
        for name in _environment_reads(p)
    }
    assert {"ZAKAZ_LOCK_TTL_SECONDS", "ZAKAZ_VIRTUAL_CLOCK_FILE", "REDIS_URL"} <= read
    read |= {override_variable(name) for name in manifests()}
    missing = sorted(n for n in read if not mentions(text, n))
    assert not missing, f"read from the environment, not in docs/reference.md §2: {missing}"


# --- BI views ------------------------------------------------------------------------------


def test_every_bi_view_and_column_is_documented(wh: Warehouse) -> None:
    columns: dict[str, list[str]] = {}
    for table, column in wh.rows(
        "SELECT c.table, c.name FROM system.columns AS c "
        "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = {db:String} AND t.engine = 'View' AND startsWith(c.table, 'v_') "
        "ORDER BY c.table, c.position",
        {"db": wh.database},
    ):
        columns.setdefault(table, []).append(column)
    assert {"v_sales_latest", "v_romi_kpi", "v_inventory", "v_data_freshness"} <= set(columns)
    views = section("4.2 BI views")
    missing = []
    for view, names in columns.items():
        if f"#### `{view}`" not in views:
            missing.append(f"{view} (no section)")
            continue
        text = section(f"`{view}`")
        missing += [f"{view}.{n}" for n in names if f"`{n}`" not in text]
    assert not missing, f"views and columns not in docs/reference.md §4.2: {missing}"


# --- HTTP endpoints ------------------------------------------------------------------------


def _api(app: FastAPI) -> set[str]:
    """`METHOD /path` of every route of an app's published API (its OpenAPI schema)."""
    paths = app.openapi()["paths"]
    return {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}


def _hidden(router: APIRouter) -> set[str]:
    """`METHOD /path` of the routes of a router kept out of the schema."""
    return {
        f"{method} {route.path}"
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def test_every_endpoint_is_documented(wh: Warehouse) -> None:
    manifest = next(iter(manifests().values()))
    source = _api(create_source_app(manifest, redis_url=NO_REDIS, warehouse=wh))
    health = _api(create_health_app(redis_url=NO_REDIS, warehouse=wh))
    local = _hidden(local_router(token="t", warehouse=wh, manifests=[], redis_url=NO_REDIS))
    assert "POST /runs" in source and "GET /healthz/{source}" in health and local
    missing = [r for r in sorted(source) if not mentions(section("3.1 Source control API"), r)]
    missing += [r for r in sorted(health) if not mentions(section("3.2 Health service"), r)]
    up = section("3.3 `zakaz up`")
    missing += [r for r in sorted(local) if not mentions(up, r.split(" ", 1)[1])]
    assert not missing, f"routes not in docs/reference.md §3: {missing}"


# --- metrics -------------------------------------------------------------------------------


def _metric_names(registry: object) -> set[str]:
    names = set()
    for family in registry.collect():  # type: ignore[attr-defined]
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def test_every_metric_is_documented(wh: Warehouse) -> None:
    installed = manifests()
    runtime = Runtime(
        next(iter(installed.values())), redis_url_override=NO_REDIS, warehouse_override=wh
    )
    source = _metric_names(registry_for(runtime))
    health = _metric_names(build_registry(lambda now: collect(wh, None, installed.values(), now)))
    assert "zakaz_job_runs_total" in source and "zakaz_queue_depth" in health
    assert set(METRIC_NAMES) <= health
    missing = [m for m in sorted(source) if not mentions(section("6.1 Source control API"), m)]
    missing += [m for m in sorted(health) if not mentions(section("6.2 Health service"), m)]
    assert not missing, f"metrics not in docs/reference.md §6: {missing}"
