"""infra/clickhouse: the users, grants, profiles and constraints, read from the XML and then
enforced by a real ClickHouse engine (chDB) loading the very same users.d file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from deploy_engine import ACCESS_SERVER_SETTINGS
from deploy_scenarios import HIDDEN, VIEWS
from deploy_support import SERVER_XML, USERS_XML, run_engine

# The repository's own config files, not untrusted input.
USERS = ET.parse(USERS_XML).getroot()  # noqa: S314
SERVER = ET.parse(SERVER_XML).getroot()  # noqa: S314


def grants(user: str) -> list[str]:
    """The GRANT statements of a user, whitespace collapsed."""
    return [" ".join((q.text or "").split()) for q in USERS.findall(f"users/{user}/grants/query")]


def profile(user: str) -> ET.Element:
    """The settings profile a user logs in with."""
    name = USERS.findtext(f"users/{user}/profile")
    found = USERS.find(f"profiles/{name}")
    assert found is not None, f"{user}'s profile {name} is not defined"
    return found


# --- what the XML says ------------------------------------------------------------------


def test_every_user_reads_its_password_from_the_environment() -> None:
    expected = {
        "etl_writer": "CH_ETL_PASSWORD",
        "datalens_reader": "CH_DATALENS_PASSWORD",
        "backup_user": "CH_BACKUP_PASSWORD",
    }
    for user, variable in expected.items():
        password = USERS.find(f"users/{user}/password")
        assert password is not None
        assert password.get("from_env") == variable
        assert not (password.text or "").strip()


def test_etl_writer_reads_writes_and_owns_the_schema_of_zakaz_only() -> None:
    statements = grants("etl_writer")

    assert statements, "etl_writer has no grants"
    for statement in statements:
        assert statement.endswith(" ON zakaz.*"), statement
    granted = {
        p.strip() for s in statements for p in s[len("GRANT ") : -len(" ON zakaz.*")].split(",")
    }
    assert {
        "SELECT",
        "INSERT",
        "ALTER",
        "CREATE TABLE",
        "CREATE VIEW",
        "CREATE DATABASE",
    } <= granted
    assert not {"DROP DATABASE", "BACKUP", "ALL"} & granted


def test_etl_writer_creates_views_that_run_with_its_rights() -> None:
    assert profile("etl_writer").findtext("default_normal_view_sql_security") == "DEFINER"
    assert SERVER.findtext("ignore_empty_sql_security_in_create_view_query") == "false"


def test_datalens_reader_may_select_the_bi_views_only() -> None:
    expected = [f"GRANT SELECT ON zakaz.{view}" for view in VIEWS]

    assert sorted(grants("datalens_reader")) == sorted(expected)


def test_the_datalens_profile_is_readonly_2_with_caps_it_cannot_raise() -> None:
    settings = profile("datalens_reader")

    assert settings.findtext("readonly") == "2"
    for cap in ("max_execution_time", "max_memory_usage", "max_result_rows"):
        value = int(float(settings.findtext(cap) or "0"))
        assert value > 0, cap
        assert settings.findtext(f"constraints/{cap}/max") == str(value), cap
        # 0 means "unlimited" to ClickHouse: the minimum keeps it from being switched off.
        assert settings.findtext(f"constraints/{cap}/min") == "1", cap
    assert USERS.findtext("users/datalens_reader/quota") == "datalens"
    assert USERS.find("quotas/datalens/interval") is not None


def test_backup_user_backs_up_and_restores_zakaz_and_the_drill_database() -> None:
    statements = grants("backup_user")

    assert "GRANT BACKUP, SELECT, SHOW ON zakaz.*" in statements
    for database in ("zakaz", "zakaz_restore"):
        restore = [s for s in statements if s.endswith(f" ON {database}.*") and "CREATE TABLE" in s]
        assert restore, f"backup_user cannot restore into {database}"
        assert "DROP DATABASE" in restore[0]
    assert "GRANT SET DEFINER ON etl_writer" in statements
    assert not [s for s in statements if " ON *.*" in s]


def test_the_default_user_is_reachable_from_inside_the_container_only() -> None:
    networks = USERS.find("users/default/networks")

    assert networks is not None
    assert networks.get("replace") == "replace"
    assert sorted(ip.text or "" for ip in networks.findall("ip")) == ["127.0.0.1", "::1"]


def test_the_server_keeps_query_log_30_days_and_has_a_backup_disk() -> None:
    assert SERVER.findtext("query_log/ttl") == "event_date + INTERVAL 30 DAY DELETE"
    assert SERVER.findtext("storage_configuration/disks/backups/type") == "local"
    disk_path = SERVER.findtext("storage_configuration/disks/backups/path")
    assert disk_path == "/var/lib/clickhouse-backups/"
    assert SERVER.findtext("backups/allowed_disk") == "backups"
    assert (
        SERVER.findtext("access_control_improvements/select_from_system_db_requires_grant")
        == "true"
    )
    for port in ("mysql_port", "postgresql_port", "interserver_http_port"):
        element = SERVER.find(port)
        assert element is not None and element.get("remove") == "1", port


def test_the_engine_copies_every_access_setting_it_needs() -> None:
    for tag in ACCESS_SERVER_SETTINGS:
        assert SERVER.find(tag) is not None, tag


# --- what a ClickHouse engine enforces with that XML ----------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Migrations as etl_writer, then what datalens_reader may do: one engine per step."""
    workdir = tmp_path_factory.mktemp("access")
    steps: dict[str, dict[str, Any]] = {}
    steps["etl"] = run_engine(workdir, "etl_writer", "etl_migrates")
    # On a server etl_writer runs the migrations itself and so is the views' definer; chDB can
    # only act as `default`, which then gets etl_writer's rights: name the definer explicitly.
    steps["definer"] = run_engine(workdir, "admin", "admin_rebinds_definer")
    steps["datalens"] = run_engine(workdir, "datalens_reader", "datalens_reads")
    return steps


def test_etl_writer_runs_the_real_migrations(engine: dict[str, dict[str, Any]]) -> None:
    etl = engine["etl"]

    assert etl["applied"], "no migration applied"
    assert etl["second_migrate"] == {"ok": True, "value": []}
    assert etl["runs"] == 1
    assert "SQL SECURITY DEFINER" in etl["romi_ddl"]
    assert etl["refresh_marts"] == {"ok": True, "value": 5}  # one freshness row per source


@pytest.mark.parametrize("statement", ["backup", "create_other_db", "drop_db", "create_user"])
def test_etl_writer_cannot(engine: dict[str, dict[str, Any]], statement: str) -> None:
    outcome = engine["etl"][statement]

    assert not outcome["ok"]
    assert "ACCESS_DENIED" in outcome["error"]


@pytest.mark.parametrize("view", VIEWS)
def test_datalens_reader_reads_every_bi_view(engine: dict[str, dict[str, Any]], view: str) -> None:
    assert engine["datalens"]["views"][view]["ok"], engine["datalens"]["views"][view]


@pytest.mark.parametrize("table", HIDDEN)
def test_datalens_reader_cannot_read_behind_the_views(
    engine: dict[str, dict[str, Any]], table: str
) -> None:
    outcome = engine["datalens"]["hidden"][table]

    assert not outcome["ok"]
    assert "ACCESS_DENIED" in outcome["error"]


def test_datalens_reader_sees_only_the_bi_views(engine: dict[str, dict[str, Any]]) -> None:
    assert engine["datalens"]["visible_tables"] == sorted(VIEWS)


def test_datalens_reader_logs_in_with_the_capped_profile(engine: dict[str, dict[str, Any]]) -> None:
    readonly, max_time, max_memory, max_rows = engine["datalens"]["settings"]

    assert readonly == 2
    assert (max_time, max_memory, max_rows) == (60, 800_000_000, 1_000_000)


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("readonly = 2", True),
        ("max_execution_time = 30", True),
        ("readonly = 0", False),
        ("max_execution_time = 3600", False),
        ("max_execution_time = 0", False),
        ("max_memory_usage = 0", False),
        ("max_memory_usage = 8000000000", False),
        ("max_result_rows = 0", False),
        ("max_result_rows = 100000000", False),
    ],
)
def test_datalens_reader_may_lower_its_caps_never_raise_them(
    engine: dict[str, dict[str, Any]], statement: str, allowed: bool
) -> None:
    assert engine["datalens"]["set"][statement]["ok"] is allowed, engine["datalens"]["set"][
        statement
    ]


@pytest.mark.parametrize("statement", ["insert", "create", "system_users"])
def test_datalens_reader_cannot_write_or_look_around(
    engine: dict[str, dict[str, Any]], statement: str
) -> None:
    assert not engine["datalens"][statement]["ok"]


def test_the_users_file_is_the_one_compose_mounts() -> None:
    compose = (Path(__file__).resolve().parents[2] / "compose.yaml").read_text()

    assert (
        "./infra/clickhouse/users.d/zakaz.xml:/etc/clickhouse-server/users.d/zakaz.xml:ro"
        in compose
    )
    assert (
        "./infra/clickhouse/config.d/zakaz.xml:/etc/clickhouse-server/config.d/zakaz.xml:ro"
        in compose
    )
