"""Every SQL block of docs/operations.md, run after real runs against the sandbox: sensible rows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from qtickets_support import Sandbox, run
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RunSummary

RUNBOOK = Path(__file__).resolve().parents[3] / "docs" / "operations.md"

_BLOCK = re.compile(r"```sql\n(.*?)```", re.S)

Rows = list[dict[str, Any]]


def runbook_queries() -> dict[str, str]:
    """Title (the block's first `-- ` line) → SQL, for every ```sql block of the runbook."""
    found = {}
    for sql in _BLOCK.findall(RUNBOOK.read_text(encoding="utf-8")):
        first = sql.splitlines()[0]
        assert first.startswith("-- "), f"a runbook block starts with its title: {first!r}"
        found[first[3:].strip()] = sql
    return found


@pytest.fixture
def three_runs(wh: Warehouse, qt_env: Sandbox) -> list[RunSummary]:
    """A clean run, a run without one show's seat map, a run without any seat map."""
    clean = run(wh)
    qt_env.control(
        "faults", {"status": 500, "count": 4, "path": "/shows/152881/", "retry_after": 0}
    )
    partial = run(wh)
    qt_env.control("faults", {"status": 500, "count": 36, "path": "/shows/", "retry_after": 0})
    failed = run(wh)
    assert [r.status for r in (clean, partial, failed)] == ["success", "success", "error"]
    return [clean, partial, failed]


def _expectations(runs: list[RunSummary], wh: Warehouse) -> dict[str, Callable[[Rows], None]]:
    clean, partial, failed = runs

    def per_status(rows: Rows) -> None:
        counts = {(r["job"], r["status"]): r["runs"] for r in rows}
        assert counts == {("qtickets_api", "success"): 2, ("qtickets_api", "error"): 1}

    def last_run(rows: Rows) -> None:
        [row] = rows
        assert (row["job"], row["last_status"]) == ("qtickets_api", "error")
        assert "all 9 seat maps of shows failed" in row["last_message"]

    def failed_runs(rows: Rows) -> None:
        assert [r["run_id"] for r in rows] == [failed.run_id]
        assert "152881" in rows[0]["message"] and rows[0]["finished_at"] is not None

    def durations(rows: Rows) -> None:
        [row] = rows
        assert row["runs"] == 3
        assert 0 < row["avg_seconds"] <= row["p90_seconds"] <= row["max_seconds"]
        longest = max(r.duration_ms for r in runs) / 1000
        assert row["max_seconds"] == pytest.approx(longest, abs=0.001)

    def partial_runs(rows: Rows) -> None:
        assert [(r["run_id"], r["failed_parts"]) for r in rows] == [
            (partial.run_id, ["1 of 9 seat maps of shows failed: 152881"])
        ]

    def unfinished(rows: Rows) -> None:
        assert rows == []

    def one_run(rows: Rows) -> None:
        [row] = rows
        assert (row["run_id"], row["status"], row["trigger"]) == (clean.run_id, "success", "cli")
        assert json.loads(row["metrics"])["duration"] == clean.duration_ms / 1000

    def open_alerts(rows: Rows) -> None:
        kinds = {(r["kind"], r["severity"]) for r in rows}
        assert kinds == {("partial", "warning"), ("run_failed", "error")}
        assert all(r["job"] == "qtickets_api" for r in rows)

    def alerts_week(rows: Rows) -> None:
        assert {(r["kind"], r["alerts"], r["still_open"]) for r in rows} == {
            ("partial", 1, 1),
            ("run_failed", 1, 1),
        }

    def rejects_by_reason(rows: Rows) -> None:
        assert sum(r["rows"] for r in rows) == wh.scalar("SELECT count() FROM rejects") > 0
        assert all(r["source"] == "qtickets_api" and r["reason"] for r in rows)

    def rejects_of_run(rows: Rows) -> None:
        assert len(rows) == clean.rows_rejected > 0

    def freshness(rows: Rows) -> None:
        by_source = {r["source"]: r for r in rows}
        assert len(by_source) == 5
        assert by_source["qtickets_api"]["last_status"] == "error"
        assert by_source["qtickets_api"]["last_success_at"] is not None

    return {
        "runs per source and status": per_status,
        "last run of each source": last_run,
        "failed runs of the last day": failed_runs,
        "durations over the last week": durations,
        "partial runs of the last week": partial_runs,
        "runs not finished after two hours": unfinished,
        "one run": one_run,
        "open alerts": open_alerts,
        "alerts of the last week, open or resolved": alerts_week,
        "rejects by reason over the last week": rejects_by_reason,
        "rejects of one run": rejects_of_run,
        "freshness per source": freshness,
    }


def test_every_runbook_query_answers_sensibly_after_real_runs(
    wh: Warehouse, three_runs: list[RunSummary]
) -> None:
    queries = runbook_queries()
    checks = _expectations(three_runs, wh)
    assert set(queries) == set(checks), "every runbook query has a check here, and only those"

    for title, sql in queries.items():
        params = {"run_id": three_runs[0].run_id} if "{run_id:String}" in sql else None
        checks[title](wh.dicts(sql, params))


def test_the_run_log_has_one_row_per_run_and_no_phantom_running(
    wh: Warehouse, three_runs: list[RunSummary]
) -> None:
    rows = wh.rows("SELECT run_id, status FROM meta_job_runs ORDER BY started_at, _ver")

    assert [r[0] for r in rows] == [r.run_id for r in three_runs]
    assert [r[1] for r in rows] == ["success", "success", "error"]
