"""`zakaz status` as people read it: whole cells at 80 columns, one note for the queue state.

The demo test leaves a text screenshot of the table at 80 columns in
`artifacts/cli/status-80.txt`, for a reviewer to look at.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse
from zakaz_common.demo import run_demo
from zakaz_common.manifest import CONTRACT_SOURCES, SourceManifest
from zakaz_common.settings import CoreSettings
from zakaz_common.status import RedisState, SourceStatus, status_view
from zakaz_common.timeutil import MSK

runner = CliRunner()
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "cli"
#: The URL zakaz uses when REDIS_URL is unset (CONTRACT §2).
DEFAULT_REDIS = "redis://localhost:6379/0"


def _assert_whole(text: str, width: int) -> None:
    """Every line fits `width` terminal cells and no cell was cut short."""
    assert "…" not in text, text
    for line in text.splitlines():
        assert cell_len(line) <= width, (cell_len(line), line)


def _row_line(text: str, source: str) -> str:
    """The table's row of `source` (the lines between the header's rule and the notes)."""
    body = text.split("─\n", 1)[1].split("times are Moscow time", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith(f"{source} ")]
    assert len(lines) == 1, text
    return lines[0]


def _default_redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(DEFAULT_REDIS, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_after_the_demo_status_fits_80_columns_and_says_once_there_is_no_scheduler(
    wh: Warehouse, sample: SourceManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.delenv("REDIS_URL")  # as after `make demo`: nothing configured
    demo = run_demo(wh, CoreSettings(), Console(file=io.StringIO()), workdir=tmp_path / "secrets")
    assert demo.ok, [r.message for r in demo.runs]
    monkeypatch.setenv("SAMPLE_FAIL", "auth")
    assert runner.invoke(app, ["run", "sample"]).exit_code == 1

    result = runner.invoke(app, ["status"], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    text = result.stdout
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "status-80.txt").write_text(text, encoding="utf-8")
    _assert_whole(text, 80)
    for source in CONTRACT_SOURCES:
        assert " success " in _row_line(text, source), text
    assert " error " in _row_line(text, "sample")
    assert "sample error: sample upstream answered 401: set SAMPLE_TOKEN" in text
    assert "abc123secret" not in text
    assert "Moscow time" in text
    if _default_redis_answers():
        # A Redis of someone else's answers at the default address: the queue is real then.
        assert "no scheduler" not in text
    else:
        assert text.count("no scheduler: inline runs only") == 1, text
        assert "redis down" not in text and "queue" not in text
        statuses = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
        assert {s["redis"] for s in statuses} == {"unused"}


def test_a_configured_redis_that_is_down_is_said_once(
    wh: Warehouse, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:9/0")  # nothing listens

    result = runner.invoke(app, ["status"], env={"COLUMNS": "80"})
    as_json = runner.invoke(app, ["status", "--json"])

    assert result.exit_code == 0, result.output
    _assert_whole(result.stdout, 80)
    assert result.stdout.count("redis down") == 1, result.stdout
    assert "redis://:***@127.0.0.1:9/0" in result.stdout and "hunter2" not in result.stdout
    assert "no scheduler" not in result.stdout
    rows = json.loads(as_json.stdout)
    assert {r["redis"] for r in rows} == {"down"}
    assert all(r["queued"] is None and r["locked"] is None for r in rows)


def test_with_redis_up_the_queue_column_and_json_show_the_queue(
    wh: Warehouse, sample: SourceManifest, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)
    redis.Redis.from_url(redis_url).rpush("rq:queue:vk_ads", "job-1", "job-2")

    wide = runner.invoke(app, ["status"], env={"COLUMNS": "120"})
    as_json = runner.invoke(app, ["status", "--json"])

    assert wide.exit_code == 0, wide.output
    assert "queue" in wide.stdout and "no scheduler" not in wide.stdout
    assert _row_line(wide.stdout, "vk_ads").rstrip().endswith("2")
    rows = {r["source"]: r for r in json.loads(as_json.stdout)}
    assert rows["vk_ads"]["queued"] == 2 and rows["vk_ads"]["redis"] == "up"
    assert rows["direct"]["queued"] == 0 and rows["direct"]["locked"] is False


TODAY = date(2026, 12, 3)


def _status(source: str, *, redis: RedisState = "up", error: str | None = None) -> SourceStatus:
    moment = datetime(2026, 12, 1, 16, 35, tzinfo=MSK)
    return SourceStatus(
        source=source,
        installed=True,
        last_status="error" if error else "success",
        last_started_at=moment,
        last_rows=123_456,
        last_success_at=moment - timedelta(days=400),
        last_data_date=date(2025, 11, 30),
        days_behind=368,
        last_error=error,
        queued=3 if redis == "up" else None,
        locked=True if redis == "up" else None,
        redis=redis,
    )


@pytest.mark.parametrize(
    ("width", "shown", "dropped"),
    [
        (140, ["started", "rows", "behind", "queue"], []),
        (80, ["started", "rows"], ["queue", "behind"]),
        (64, ["rows"], ["queue", "behind", "started"]),
        (58, [], ["queue", "behind", "started", "rows"]),
    ],
    ids=["wide", "80", "64", "58"],
)
def test_columns_go_by_priority_and_no_cell_is_cut(
    width: int, shown: list[str], dropped: list[str]
) -> None:
    error = "qtickets upstream answered 401: the token is wrong; set QTICKETS_TOKEN " * 3
    rows = [_status(s) for s in CONTRACT_SOURCES[:-1]] + [_status("gmail", error=error)]
    console = Console(file=io.StringIO(), width=width, color_system=None)

    console.print(
        status_view(rows, where="here", redis_url=DEFAULT_REDIS, width=width, today=TODAY)
    )

    text = console.file.getvalue()  # type: ignore[attr-defined]
    _assert_whole(text, width)
    header = text.splitlines()[1]
    for name in ["source", "last run", "last success", "data up to", *shown]:
        assert name in header, (name, header)
    for name in dropped:
        assert name not in header, (name, header)
    assert "12-01 16:35" in text if "started" in shown else True
    assert "2025-10-27 16:35" in text  # another year: the year is shown
    assert "2025-11-30" in text
    # The error is whole under the table, however narrow the terminal.
    flat = " ".join(text.split())
    assert " ".join(f"gmail error: {error}".split()) in flat


def test_narrower_than_the_kept_columns_the_cells_wrap_whole() -> None:
    rows = [_status(s, redis="down") for s in CONTRACT_SOURCES]
    console = Console(file=io.StringIO(), width=40, color_system=None)

    console.print(status_view(rows, where="here", redis_url=DEFAULT_REDIS, width=40, today=TODAY))

    text = console.file.getvalue()  # type: ignore[attr-defined]
    _assert_whole(text, 40)
    for source in CONTRACT_SOURCES:
        assert source in text
    assert text.count("redis down") == 1


def test_check_and_sql_tables_keep_every_value_whole_at_80_columns(
    wh: Warehouse, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2025-06-01", 1, 1, "10"]]))
    assert runner.invoke(app, ["run", "sample"]).exit_code == 0

    check = runner.invoke(app, ["check"], env={"COLUMNS": "80"})
    sql = runner.invoke(
        app,
        ["sql", "SELECT run_id, job, status, started_at, finished_at, metrics FROM meta_job_runs"],
        env={"COLUMNS": "80"},
    )

    assert check.exit_code == 0, check.output
    _assert_whole(check.stdout, 80)
    assert "duplicates:v_campaign_performance " in check.stdout
    assert sql.exit_code == 0, sql.output
    _assert_whole(sql.stdout, 80)
    run_id = wh.scalar("SELECT run_id FROM meta_job_runs")
    cells = [ln.split("│") for ln in sql.stdout.splitlines() if ln[:1] == "│"]
    assert "".join(c[1].strip() for c in cells) == run_id  # folded over lines, never cut
    started = datetime.fromisoformat("".join(c[4].strip() for c in cells))
    assert started.utcoffset() == timedelta(hours=3)
