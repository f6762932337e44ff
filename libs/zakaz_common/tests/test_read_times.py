"""Moments read back from the warehouse: every one aware Moscow time, as far apart as they were.

The embedded engine reports a `DateTime('Europe/Moscow')` column without its zone, so such a
column came back naive in UTC while a `Nullable` one came back aware in Moscow time: a run's
`started_at` and `finished_at` then looked three hours apart, and `zakaz status --json` printed
the two kinds side by side.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse
from zakaz_common.control import status_from_json, status_to_json
from zakaz_common.manifest import SourceManifest, manifests
from zakaz_common.marts import refresh_marts
from zakaz_common.runs import (
    RunRequest,
    execute,
    get_run,
    latest_runs,
    new_run_id,
    open_runs,
    record_run,
)
from zakaz_common.settings import CoreSettings
from zakaz_common.status import source_statuses

runner = CliRunner()
MSK_OFFSET = timedelta(hours=3)


def _is_msk(value: object) -> bool:
    return isinstance(value, datetime) and value.utcoffset() == MSK_OFFSET


def _iso_msk(value: object) -> datetime:
    """A JSON moment: ISO 8601 with a `T` and `+03:00`, and nothing else."""
    assert isinstance(value, str) and "T" in value and value.endswith("+03:00"), value
    return datetime.fromisoformat(value)


def test_a_recorded_run_reads_back_aware_msk_and_as_long_as_it_was(wh: Warehouse) -> None:
    started = int(time.time()) - 7
    run_id = new_run_id()
    record_run(
        wh,
        run_id=run_id,
        job="sample",
        status="success",
        started_at=started,
        finished_at=started + 7,
    )
    open_id = new_run_id()
    record_run(wh, run_id=open_id, job="sample", status="running", started_at=started)

    run = get_run(wh, run_id)
    latest = latest_runs(wh, "sample")
    running = open_runs(wh, "sample")

    assert run is not None
    assert _is_msk(run["started_at"]) and _is_msk(run["finished_at"]), run
    assert run["finished_at"] - run["started_at"] == timedelta(seconds=7)
    assert run["started_at"].timestamp() == started
    assert all(_is_msk(r["started_at"]) for r in latest), latest
    assert [r["run_id"] for r in running] == [open_id]
    assert _is_msk(running[0]["started_at"]) and running[0]["started_at"] == run["started_at"]
    moments = wh.rows(
        "SELECT max(started_at), maxIf(finished_at, status = 'success'), now() FROM meta_job_runs"
    )[0]
    assert all(_is_msk(m) for m in moments), moments


def test_a_real_run_lasts_its_duration_between_started_and_finished(
    wh: Warehouse, core: CoreSettings, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_SLEEP", "2")
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 1, "10"]]))

    summary = execute(sample, RunRequest(), wh=wh, core=core)
    run = get_run(wh, summary.run_id)

    assert run is not None and run["status"] == "success"
    took = (run["finished_at"] - run["started_at"]).total_seconds()
    # The columns keep whole seconds: within one second of the measured duration.
    assert abs(took - summary.duration_ms / 1000) <= 1, (took, summary.duration_ms)
    assert took >= 1


def test_status_and_sql_json_write_every_moment_as_msk_iso_8601(
    wh: Warehouse, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 1, "10"]]))
    started = int(time.time()) - 5
    record_run(
        wh,
        run_id=new_run_id(),
        job="vk_ads",
        status="success",
        started_at=started,
        finished_at=started + 5,
    )
    assert runner.invoke(app, ["run", "sample"]).exit_code == 0

    status = runner.invoke(app, ["status", "--json"])
    sql = runner.invoke(
        app, ["sql", "--json", "SELECT job, started_at, finished_at FROM meta_job_runs"]
    )

    assert status.exit_code == 0, status.output
    rows = {r["source"]: r for r in json.loads(status.stdout)}
    vk = rows["vk_ads"]
    took = _iso_msk(vk["last_success_at"]) - _iso_msk(vk["last_started_at"])
    assert took == timedelta(seconds=5)
    assert 0 <= time.time() - _iso_msk(rows["sample"]["last_started_at"]).timestamp() < 60
    assert sql.exit_code == 0, sql.output
    read = {r["job"]: r for r in json.loads(sql.stdout)}
    assert _iso_msk(read["vk_ads"]["finished_at"]) - _iso_msk(read["vk_ads"]["started_at"]) == took
    sample_took = _iso_msk(read["sample"]["finished_at"]) - _iso_msk(read["sample"]["started_at"])
    assert timedelta(0) <= sample_took < timedelta(seconds=60)


def test_a_contract_source_status_has_both_moments_in_msk_and_round_trips(
    wh: Warehouse, core: CoreSettings
) -> None:
    started = int(time.time()) - 5
    record_run(
        wh,
        run_id=new_run_id(),
        job="vk_ads",
        status="success",
        started_at=started,
        finished_at=started + 5,
    )
    refresh_marts(wh)  # what a run does after it loads; v_data_freshness reads a mart

    rows = source_statuses(wh, manifests().values(), core.redis_url)
    vk = {r.source: r for r in rows}["vk_ads"]

    assert _is_msk(vk.last_started_at) and _is_msk(vk.last_success_at), vk
    assert vk.last_success_at - vk.last_started_at == timedelta(seconds=5)
    # What `zakaz up` serves to `zakaz status` in another terminal comes back the same.
    assert [status_from_json(json.loads(json.dumps(status_to_json(r)))) for r in rows] == rows
    _iso_msk(status_to_json(vk)["last_started_at"])
