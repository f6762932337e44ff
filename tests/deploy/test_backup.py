"""zakaz_common.backup on a real ClickHouse engine (chDB) configured like the server: BACKUP and
RESTORE as backup_user, keep N, the restore drill, and the definer views after a restore."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_scenarios import VIEWS
from deploy_support import run_engine
from zakaz_common.backup import RESTORE_DRILL_DATABASE


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Migrate as etl_writer, back up and restore as backup_user, then read as datalens_reader."""
    workdir = tmp_path_factory.mktemp("backup")
    steps: dict[str, dict[str, Any]] = {}
    steps["etl"] = run_engine(workdir, "etl_writer", "etl_migrates")
    steps["definer"] = run_engine(workdir, "admin", "admin_rebinds_definer")
    steps["backup"] = run_engine(workdir, "backup_user", "backup_drill")
    steps["datalens"] = run_engine(workdir, "datalens_reader", "datalens_reads")
    steps["unconfigured"] = run_engine(workdir, "admin", "backup_without_allowed_path")
    return steps


def test_backup_keeps_the_newest_n(drill: dict[str, dict[str, Any]]) -> None:
    made = drill["backup"]["names"]

    assert len(set(made)) == 3
    assert all(name.startswith("zakaz-") for name in made)
    assert drill["backup"]["listed"] == [made[2], made[1]]


def test_restore_replaces_the_database_with_the_backup(drill: dict[str, dict[str, Any]]) -> None:
    before, changed, restored = drill["backup"]["counts"]

    assert changed == before + 1
    assert restored == before
    assert drill["backup"]["live_tables"] == drill["backup"]["drill_tables"]


def test_restore_first_backs_up_what_it_replaces(drill: dict[str, dict[str, Any]]) -> None:
    safety = drill["backup"]["safety"]

    assert safety is not None
    assert safety in drill["backup"]["after_restore"]
    assert drill["backup"]["after_restore"][0] == safety


def test_the_restore_drill_restores_into_its_own_database(drill: dict[str, dict[str, Any]]) -> None:
    assert RESTORE_DRILL_DATABASE == "zakaz_restore"
    assert drill["backup"]["drill"] is None
    assert drill["backup"]["drill_runs"] == drill["backup"]["counts"][0]
    assert {"meta_job_runs", "meta_job_runs_log"} <= set(drill["backup"]["drill_tables"])


def test_restored_views_still_run_as_their_definer(drill: dict[str, dict[str, Any]]) -> None:
    assert "DEFINER = etl_writer SQL SECURITY DEFINER" in drill["backup"]["romi_ddl"]
    for view in VIEWS:
        assert drill["datalens"]["views"][view]["ok"], view


def test_backup_sizes_are_reported(drill: dict[str, dict[str, Any]]) -> None:
    assert all(size > 0 for size in drill["backup"]["sizes"])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown", "no backup named 'zakaz-19990101T000000Z'"),
        ("keep_zero", "keep must be at least 1"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(
    drill: dict[str, dict[str, Any]], case: str, message: str
) -> None:
    outcome = drill["backup"][case]

    assert not outcome["ok"]
    assert message in outcome["error"]


def test_an_engine_without_a_backup_path_says_what_to_configure(
    drill: dict[str, dict[str, Any]],
) -> None:
    outcome = drill["unconfigured"]

    assert outcome["error_type"] == "ConfigError"
    assert "backups.allowed_path" in outcome["outcome"]["error"]
