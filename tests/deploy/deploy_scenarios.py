"""Steps run by `deploy_engine.py` in a child process, one engine each; each returns a JSON-able dict."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from deploy_engine import attempt, open_wh

#: The BI views of CONTRACT §4: all that datalens_reader may read.
VIEWS = (
    "v_sales_latest",
    "v_sales_14d",
    "v_marketing_daily",
    "v_campaign_performance",
    "v_romi_kpi",
    "v_inventory",
    "v_data_freshness",
)

#: Tables behind the views that datalens_reader must not read directly.
HIDDEN = (
    "fact_qtickets_sales_daily",
    "fact_vk_ads_daily",
    "dim_city",
    "meta_job_runs",
    "meta_job_runs_log",
    "rejects",
)


def _run_row(wh: Any, run_id: str) -> None:
    now = int(time.time())
    wh.insert(
        "meta_job_runs_log",
        [
            (
                run_id,
                "qtickets_api",
                "success",
                now,
                now,
                10,
                0,
                "",
                '{"duration_ms": 5}',
                "{}",
                "cli",
                time.time_ns(),
            )
        ],
        [
            "run_id",
            "job",
            "status",
            "started_at",
            "finished_at",
            "rows_processed",
            "rows_rejected",
            "message",
            "metrics",
            "params",
            "trigger",
            "_ver",
        ],
    )


def _count(wh: Any, table: str) -> int:
    return int(wh.scalar(f"SELECT count() FROM {table}"))


def etl_migrates(workdir: Path, act_as: str) -> dict[str, Any]:
    """etl_writer runs the real migrations and loads a row; what it may not do."""
    from zakaz_common.marts import refresh_marts
    from zakaz_common.migrate import migrate

    wh = open_wh(workdir, act_as)
    report = migrate(wh)
    _run_row(wh, "run-1")
    return {
        # After every run etl_writer swaps fresh marts in (CREATE, INSERT, EXCHANGE, DROP).
        "refresh_marts": attempt(lambda: refresh_marts(wh).rows["mart_data_freshness"]),
        "applied": report.applied,
        "romi_ddl": wh.scalar(
            "SELECT create_table_query FROM system.tables WHERE name = 'v_romi_kpi'"
        ),
        "runs": _count(wh, "meta_job_runs"),
        "second_migrate": attempt(lambda: migrate(wh).applied),
        "backup": attempt(
            lambda: wh.rows(f"BACKUP DATABASE zakaz TO File('{workdir}/backups/etl')")
        ),
        "create_other_db": attempt(lambda: wh.command("CREATE DATABASE other")),
        "drop_db": attempt(lambda: wh.command("DROP DATABASE zakaz")),
        "create_user": attempt(lambda: wh.command("CREATE USER intruder")),
    }


def admin_rebinds_definer(workdir: Path, act_as: str) -> dict[str, Any]:
    """Name etl_writer the views' definer, as a server does when etl_writer runs the migrations."""
    wh = open_wh(workdir, act_as)
    views = [
        r[0]
        for r in wh.rows(
            "SELECT name FROM system.tables WHERE database = 'zakaz' AND engine = 'View'"
        )
    ]
    for view in views:
        wh.command(f"ALTER TABLE zakaz.`{view}` MODIFY SQL SECURITY DEFINER DEFINER = etl_writer")
    return {"views": views}


def datalens_reads(workdir: Path, act_as: str) -> dict[str, Any]:
    """What datalens_reader can and cannot do."""
    wh = open_wh(workdir, act_as)
    return {
        "settings": wh.rows(
            "SELECT getSetting('readonly'), getSetting('max_execution_time'), "
            "getSetting('max_memory_usage'), getSetting('max_result_rows')"
        )[0],
        "views": {v: attempt(partial(_count, wh, v)) for v in VIEWS},
        "hidden": {t: attempt(partial(_count, wh, t)) for t in HIDDEN},
        "visible_tables": sorted(r[0] for r in wh.rows("SHOW TABLES FROM zakaz")),
        "insert": attempt(lambda: _run_row(wh, "run-x")),
        "create": attempt(lambda: wh.command("CREATE TABLE zakaz.x (a UInt8) ENGINE = Memory")),
        "set": {
            name: attempt(partial(wh.command, f"SET {name}"))
            for name in (
                "readonly = 2",
                "readonly = 0",
                "max_execution_time = 30",
                "max_execution_time = 3600",
                "max_execution_time = 0",
                "max_memory_usage = 0",
                "max_memory_usage = 8000000000",
                "max_result_rows = 0",
                "max_result_rows = 100000000",
            )
        },
        "system_users": attempt(lambda: wh.rows("SELECT name FROM system.users")),
        "system_processes": attempt(lambda: wh.rows("SELECT query FROM system.processes")),
    }


def backup_drill(workdir: Path, act_as: str) -> dict[str, Any]:
    """backup / list / prune / restore through zakaz_common.backup, as the acting user."""
    from zakaz_common import backup as bk

    wh = open_wh(workdir, act_as)
    before = _count(wh, "meta_job_runs")
    names = [bk.backup(wh, keep=2) for _ in range(3)]
    listed = [b.name for b in bk.list_backups(wh)]
    _run_row(wh, "run-after-backup")
    changed = _count(wh, "meta_job_runs")
    safety = bk.restore(wh, names[-1])
    restored = _count(wh, "meta_job_runs")
    drill = bk.restore(wh, names[-1], database=bk.RESTORE_DRILL_DATABASE)
    drill_tables = sorted(r[0] for r in wh.rows(f"SHOW TABLES FROM {bk.RESTORE_DRILL_DATABASE}"))
    return {
        "names": names,
        "listed": listed,
        "after_restore": [b.name for b in bk.list_backups(wh)],
        "counts": [before, changed, restored],
        "safety": safety,
        "drill": drill,
        # The restored storage: the drill database's views run as etl_writer, who may not read it.
        "drill_runs": _count(wh, f"{bk.RESTORE_DRILL_DATABASE}.meta_job_runs_log FINAL"),
        "drill_tables": drill_tables,
        "live_tables": sorted(r[0] for r in wh.rows("SHOW TABLES FROM zakaz")),
        "romi_ddl": wh.scalar(
            "SELECT create_table_query FROM system.tables WHERE database = 'zakaz' AND name = 'v_romi_kpi'"
        ),
        "unknown": attempt(lambda: bk.restore(wh, "zakaz-19990101T000000Z")),
        "keep_zero": attempt(lambda: bk.backup(wh, keep=0)),
        "sizes": [b.size_bytes for b in bk.list_backups(wh)],
    }


def backup_without_allowed_path(workdir: Path, act_as: str) -> dict[str, Any]:
    """An embedded engine opened without backups.allowed_path: backup says what to configure."""
    import clickhouse_connect
    from zakaz_common import backup as bk
    from zakaz_common.clickhouse import Warehouse

    path = workdir / "plain-warehouse"
    boot = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    boot.command("CREATE DATABASE IF NOT EXISTS zakaz")
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}", database="zakaz")
    wh = Warehouse(client=client, database="zakaz", dsn=f"chdb://{path}", embedded=True)
    wh.command("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
    outcome = attempt(lambda: bk.backup(wh, keep=1))
    return {"outcome": outcome, "error_type": _error_type(lambda: bk.backup(wh, keep=1))}


def _error_type(fn: Any) -> str | None:
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__
    return None
