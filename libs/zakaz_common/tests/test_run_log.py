"""`meta_job_runs` read plainly: one row per run at every moment, and migration 0013 keeps the log."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.marts import refresh_marts
from zakaz_common.migrate import load_migrations, migrate
from zakaz_common.runs import RunRequest, execute, new_run_id, record_run
from zakaz_common.settings import CoreSettings, WarehouseSettings

#: The last migration before meta_job_runs became a view.
BEFORE_VIEW = 12


def _runs(wh: Warehouse) -> list[tuple[str, str]]:
    return [(str(r), str(s)) for r, s in wh.rows("SELECT run_id, status FROM meta_job_runs")]


def test_a_run_shows_once_while_it_is_queued_running_and_done(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 2, "100"]]))
    monkeypatch.setenv("SAMPLE_SLEEP", "1.5")
    run_id = new_run_id()
    record_run(wh, run_id=run_id, job="sample", status="queued", started_at=time.time())
    assert _runs(wh) == [(run_id, "queued")]
    seen: set[tuple[tuple[str, str], ...]] = set()
    worker = threading.Thread(
        target=execute,
        args=(sample, RunRequest()),
        kwargs={"wh": wh, "core": core, "run_id": run_id},
    )

    worker.start()
    while worker.is_alive():
        seen.add(tuple(_runs(wh)))
        time.sleep(0.05)
    worker.join()
    seen.add(tuple(_runs(wh)))

    assert ((run_id, "running"),) in seen
    assert all(len(rows) == 1 for rows in seen), seen
    assert _runs(wh) == [(run_id, "success")]
    assert wh.rows("SELECT job, status, count() FROM meta_job_runs GROUP BY job, status") == [
        ("sample", "success", 1)
    ]
    duration = wh.scalar("SELECT JSONExtractFloat(metrics, 'duration') FROM meta_job_runs")
    assert duration >= 1.5


@pytest.fixture
def old_warehouse() -> Iterator[Warehouse]:
    """A database migrated only up to 0012, as a deployment was before meta_job_runs_log."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    wh = open_warehouse(WarehouseSettings(), CoreSettings(), database=name)
    migrate(wh, [m for m in load_migrations() if m.version <= BEFORE_VIEW])
    yield wh
    wh.command(f"DROP DATABASE IF EXISTS `{name}`")


def test_migration_0013_keeps_every_run_and_the_freshness_view_reads_the_new_view(
    old_warehouse: Warehouse,
) -> None:
    wh = old_warehouse
    columns = ["run_id", "job", "status", "started_at", "finished_at", "message", "_ver"]
    now = int(time.time())
    wh.insert(
        "meta_job_runs",
        [
            ("a", "vk_ads", "running", now - 60, None, "", 1),
            ("a", "vk_ads", "success", now - 60, now - 50, "", 2),
            ("b", "vk_ads", "running", now - 10, None, "", 3),
            ("b", "vk_ads", "error", now - 10, now - 5, "VK answered 500", 4),
        ],
        columns,
    )

    report = migrate(wh)

    assert [a for a in report.applied if a.startswith("0013")] == ["0013_job_runs_view"]
    engines = dict(
        wh.rows(
            "SELECT name, engine FROM system.tables WHERE database = {db:String} "
            "AND name LIKE 'meta_job_runs%'",
            {"db": wh.database},
        )
    )
    assert engines == {"meta_job_runs": "View", "meta_job_runs_log": "ReplacingMergeTree"}
    assert sorted(_runs(wh)) == [("a", "success"), ("b", "error")]
    refresh_marts(wh)
    [fresh] = wh.dicts(
        "SELECT last_status, last_error, last_success_at FROM v_data_freshness "
        "WHERE source = 'vk_ads'"
    )
    assert (fresh["last_status"], fresh["last_error"]) == ("error", "VK answered 500")
    assert fresh["last_success_at"] is not None
    assert migrate(wh).applied == []
