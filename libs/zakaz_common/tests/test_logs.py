"""Log level and format as an operator sets them: ZAKAZ_LOG_LEVEL, ZAKAZ_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.redact import LOG_FORMAT_VARIABLE, LOG_LEVEL_VARIABLE, configure_logging
from zakaz_common.runs import RunRequest, execute
from zakaz_common.settings import CoreSettings


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    monkeypatch.delenv(LOG_FORMAT_VARIABLE, raising=False)
    monkeypatch.delenv(LOG_LEVEL_VARIABLE, raising=False)
    configure_logging()
    root.setLevel(level)


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_json_lines_carry_the_run_id_and_source_of_every_line_of_a_run(
    sample: SourceManifest,
    wh: Warehouse,
    core: CoreSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(LOG_FORMAT_VARIABLE, "json")
    monkeypatch.setenv(LOG_LEVEL_VARIABLE, "info")
    monkeypatch.setenv("SAMPLE_ROWS", json.dumps([["2026-12-01", "e1", 2, "1 500,50"]]))
    configure_logging("WARNING")
    capsys.readouterr()
    logging.getLogger("zakaz.test").info("before the run: card 4111 1111 1111 1111")
    summary = execute(sample, RunRequest(), wh=wh, core=core)
    logging.getLogger("zakaz.test").info("after the run")

    lines = _lines(capsys.readouterr().err)
    assert summary.status == "success"
    outside = [line for line in lines if line["logger"] == "zakaz.test"]
    inside = [line for line in lines if line["logger"] == "sample_source"]
    assert [line["message"] for line in inside] == ["sample upstream gave 1 rows"]
    assert inside[0]["run_id"] == summary.run_id and inside[0]["source"] == "sample"
    assert inside[0]["level"] == "INFO"
    assert datetime.fromisoformat(str(inside[0]["time"])).utcoffset() is not None
    assert len(outside) == 2 and all("run_id" not in line for line in outside)
    assert "4111" not in str(outside[0]["message"])  # still scrubbed


def test_the_level_variable_wins_over_the_commands_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOG_LEVEL_VARIABLE, "ERROR")
    configure_logging("INFO")
    logging.getLogger("zakaz.test").warning("quiet")
    logging.getLogger("zakaz.test").error("loud")
    err = capsys.readouterr().err
    assert "loud" in err and "quiet" not in err
    assert not err.lstrip().startswith("{")  # text unless asked for json


def test_a_wrong_value_is_said_once_and_the_default_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOG_LEVEL_VARIABLE, "chatty")
    monkeypatch.setenv(LOG_FORMAT_VARIABLE, "xml")
    configure_logging("WARNING")
    err = capsys.readouterr().err
    assert "ZAKAZ_LOG_LEVEL='chatty' is not one of DEBUG" in err
    assert "ZAKAZ_LOG_FORMAT='xml' is not one of text, json; using text" in err
    assert logging.getLogger().level == logging.WARNING
