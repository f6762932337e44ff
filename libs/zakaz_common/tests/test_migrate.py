"""Migrations: ordered, recorded, idempotent, forward-only; dim_city seeded from the CSV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from zakaz_common.cities import CityDirectory
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import ConfigError
from zakaz_common.migrate import Migration, load_migrations, migrate, seed_cities

CONTRACT_TABLES = {
    "meta_job_runs",
    "rejects",
    "alerts",
    "dim_events",
    "dim_city",
    "fact_qtickets_sales_daily",
    "fact_qtickets_inventory_latest",
    "fact_vk_ads_daily",
    "fact_direct_daily",
}
SALES_COLUMNS = [
    "sale_date",
    "event_id",
    "event_name",
    "event_date",
    "city",
    "tickets_sold",
    "revenue",
    "source",
]
CONTRACT_VIEWS = {
    "v_sales_latest": SALES_COLUMNS,
    "v_sales_14d": SALES_COLUMNS,
    "v_marketing_daily": [
        "stat_date",
        "platform",
        "city",
        "event_date",
        "impressions",
        "clicks",
        "spend",
    ],
    "v_campaign_performance": [
        "stat_date",
        "platform",
        "campaign_id",
        "campaign_name",
        "impressions",
        "clicks",
        "spend",
        "ctr",
        "cpc",
    ],
    "v_romi_kpi": [
        "city",
        "event_date",
        "tickets_sold",
        "revenue",
        "spend",
        "spend_vk",
        "spend_direct",
        "romi",
        "romi_color",
    ],
    "v_inventory": [
        "event_id",
        "event_name",
        "event_date",
        "city",
        "tickets_total",
        "tickets_left",
        "updated_at",
    ],
    "v_data_freshness": [
        "source",
        "last_success_at",
        "last_data_date",
        "days_behind",
        "last_status",
        "last_error",
    ],
}


def _snapshot(wh: Warehouse) -> list[tuple[object, ...]]:
    return wh.rows(
        "SELECT name, total_rows, metadata_modification_time FROM system.tables "
        "WHERE database = {db:String} ORDER BY name",
        {"db": wh.database},
    )


def test_every_contract_table_and_view_exists_with_its_columns(wh: Warehouse) -> None:
    names = {
        r[0]
        for r in wh.rows(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": wh.database}
        )
    }
    assert names >= CONTRACT_TABLES
    for view, columns in CONTRACT_VIEWS.items():
        found = [
            r[0]
            for r in wh.rows(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
                {"db": wh.database, "t": view},
            )
        ]
        assert found == columns, view


def test_money_and_time_types_follow_the_contract(wh: Warehouse) -> None:
    rows = wh.rows(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} "
        "AND (table LIKE 'fact_%' OR table LIKE 'v_%' OR table IN ('meta_job_runs', 'alerts', 'rejects'))",
        {"db": wh.database},
    )
    for table, name, type_ in rows:
        if name in {"revenue", "spend", "spend_vk", "spend_direct"}:
            assert type_ == "Decimal(18, 2)", (table, name, type_)
        if "DateTime" in type_:
            assert "DateTime('Europe/Moscow')" in type_, (table, name, type_)


def test_facts_are_replacing_merge_trees_with_version_and_deleted_flag(wh: Warehouse) -> None:
    rows = wh.rows(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name LIKE 'fact_%'",
        {"db": wh.database},
    )
    assert {name for name, _ in rows} >= {t for t in CONTRACT_TABLES if t.startswith("fact_")}
    for name, engine in rows:
        assert engine.startswith("ReplacingMergeTree(_ver, _deleted)"), name


def test_staging_tables_expire(wh: Warehouse) -> None:
    rows = wh.rows(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String} "
        "AND name LIKE 'stg_%' AND engine != 'Null'",
        {"db": wh.database},
    )
    assert rows
    assert all("TTL" in engine for _, engine in rows)
    # What keeps nothing needs no expiry: the engine's orders pass through to materialized views.
    kept_nothing = wh.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'Null'",
        {"db": wh.database},
    )
    assert kept_nothing == [("stg_qtickets_orders_in",)]


def test_second_migrate_applies_and_writes_nothing(wh: Warehouse) -> None:
    before = _snapshot(wh)

    report = migrate(wh)

    assert not report.changed
    assert _snapshot(wh) == before


def test_an_edited_applied_migration_is_refused(wh: Warehouse) -> None:
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in load_migrations()]

    with pytest.raises(ConfigError, match="forward-only"):
        migrate(wh, edited)


def test_a_new_migration_is_applied_once(wh: Warehouse) -> None:
    extra = Migration(
        9999, "extra", "CREATE TABLE IF NOT EXISTS extra_t (a UInt8) ENGINE = MergeTree ORDER BY a;"
    )
    all_ = [*load_migrations(), extra]

    assert migrate(wh, all_).applied == ["9999_extra"]
    assert migrate(wh, all_).applied == []
    assert wh.table_exists("extra_t")


def test_statements_split_on_semicolons_at_line_ends_only() -> None:
    m = Migration(1, "x", "-- comment; not a split\nSELECT 'a;b';\nSELECT 2;\n")
    assert m.statements() == ["SELECT 'a;b'", "SELECT 2"]


def test_dim_city_is_seeded_and_follows_the_csv(wh: Warehouse) -> None:
    bundled = CityDirectory.bundled()
    live = dict(wh.rows("SELECT alias, city FROM dim_city FINAL"))
    assert live == dict(bundled.alias_rows())
    assert live["msk"] == "москва"
    assert live["питер"] == "санкт-петербург"
    assert live["ekb"] == "екатеринбург"

    smaller = CityDirectory.from_rows([("msk", "москва"), ("спб", "санкт-петербург")])
    upserted, retracted = seed_cities(wh, smaller)

    assert upserted == 0
    assert retracted == len(live) - len(smaller.alias_rows())
    assert dict(wh.rows("SELECT alias, city FROM dim_city FINAL")) == dict(smaller.alias_rows())
    assert "ekb" not in dict(wh.rows("SELECT alias, city FROM dim_city FINAL"))


def test_zakaz_migrate_twice_on_an_empty_data_dir(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ZAKAZ_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "zakaz_common", "migrate"]

    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert first.returncode == 0, first.stderr
    assert f"applied {len(load_migrations())} migrations" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert (tmp_path / "data" / "warehouse").is_dir()
