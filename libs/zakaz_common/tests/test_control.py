"""What `zakaz sql` lets through, the control file a running `zakaz up` leaves, and the clock."""

from __future__ import annotations

import json
import os
import stat
import time
from decimal import Decimal
from pathlib import Path

import pytest
from zakaz_common import clock
from zakaz_common.clickhouse import Warehouse
from zakaz_common.control import announce, read_only_statement, run_read_only, running
from zakaz_common.errors import ConfigError
from zakaz_common.jobs import RETRY_INTERVALS, RETRY_INTERVALS_VARIABLE, retry_intervals


@pytest.mark.parametrize(
    ("query", "statement"),
    [
        ("SELECT 1", "SELECT 1"),
        ("  SELECT 1 ;  -- the end\n", "SELECT 1"),
        ("SELECT 'a;b' AS text", "SELECT 'a;b' AS text"),
        ('SELECT 1 AS "x;y"', 'SELECT 1 AS "x;y"'),
        ("SELECT 1 /* ; */", "SELECT 1 /* ; */"),
        ("WITH 2 AS n SELECT n", "WITH 2 AS n SELECT n"),
        ("SELECT city AS file FROM dim_city", "SELECT city AS file FROM dim_city"),
    ],
)
def test_one_read_only_statement_is_kept(query: str, statement: str) -> None:
    assert read_only_statement(query) == statement


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("SELECT 1; DROP TABLE meta_job_runs", "one statement at a time"),
        ("SELECT 1;;", "one statement at a time"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
        ("SELECT * FROM file('/etc/passwd')", "file()"),
        ("SELECT * FROM url ('http://example.org', CSV)", "url()"),
        ("SELECT * FROM executable('x.sh', TSV, 'a String')", "executable()"),
        ("SELECT * FROM Remote('h', system.one)", "remote()"),
        ("SELECT 'unclosed", "unclosed quote"),
        ("   ; ", "empty"),
    ],
)
def test_what_could_write_or_reach_outside_is_refused(query: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_only_statement(query)
    assert says in str(caught.value)


def test_only_reading_statements_run_and_values_come_back_plain(wh: Warehouse) -> None:
    answer = run_read_only(
        wh, "SELECT toDecimal64(1.5, 2) AS money, toDate('2026-12-03') AS day, 'ё' AS text"
    )
    assert answer == {
        "columns": ["money", "day", "text"],
        "rows": [[str(Decimal("1.50")), "2026-12-03", "ё"]],
        "truncated": False,
    }
    assert run_read_only(wh, "SELECT number FROM numbers(5)", max_rows=3) == {
        "columns": ["number"],
        "rows": [[0], [1], [2]],
        "truncated": True,
    }
    assert ["meta_job_runs"] in run_read_only(wh, "SHOW TABLES")["rows"]
    for query in (
        "DROP TABLE meta_job_runs",
        "INSERT INTO alerts SELECT * FROM alerts",
        "TRUNCATE TABLE alerts",
        "OPTIMIZE TABLE meta_job_runs",
        "SYSTEM DROP DNS CACHE",
    ):
        with pytest.raises(ConfigError, match="only reads"):
            run_read_only(wh, query)
    with pytest.raises(ConfigError, match="does not parse"):
        run_read_only(wh, "SELEC 1")
    assert run_read_only(wh, "EXISTS TABLE meta_job_runs")["rows"] == [[1]]
    assert run_read_only(wh, "DESCRIBE TABLE alerts")["rows"]
    assert "CREATE TABLE" in run_read_only(wh, "SHOW CREATE TABLE alerts")["rows"][0][0]


def test_the_control_file_is_private_and_withdrawn(tmp_path: Path) -> None:
    remote, withdraw = announce(tmp_path, "http://127.0.0.1:1", "secret-token")
    path = tmp_path / "control.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["pid"] == os.getpid() == remote.pid
    withdraw()
    assert not path.exists()


def test_a_control_file_of_a_dead_process_is_not_a_running_platform(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    (warehouse / "control.json").write_text(
        json.dumps({"url": "http://127.0.0.1:1", "token": "t", "pid": 2**22 + 12345})
    )
    assert running(tmp_path) is None


def test_the_virtual_clock_follows_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert clock.offset() == 0.0
    path = tmp_path / "clock"
    monkeypatch.setenv(clock.CLOCK_FILE_VARIABLE, str(path))
    assert clock.offset() == 0.0  # no file yet: real time
    clock.set_offset(path, 86_400)
    assert clock.offset() == 86_400
    assert 86_399 < clock.now() - time.time() < 86_401
    clock.set_offset(path, 900.5)
    assert clock.offset() == 900.5
    assert clock.utcnow().tzinfo is not None
    path.write_text("tomorrow\n")
    with pytest.raises(ConfigError, match="not a number of seconds"):
        clock.offset()


def test_retry_waits_can_be_shortened_but_not_garbled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert retry_intervals() == RETRY_INTERVALS
    monkeypatch.setenv(RETRY_INTERVALS_VARIABLE, "2, 4,8")
    assert retry_intervals() == (2, 4, 8)
    for bad in ("2,x", "-1", "1.5"):
        monkeypatch.setenv(RETRY_INTERVALS_VARIABLE, bad)
        with pytest.raises(ConfigError, match=RETRY_INTERVALS_VARIABLE):
            retry_intervals()
