"""What a newcomer meets first: `zakaz --version`, the help, and one style for every error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner
from zakaz_common.cli import DISTRIBUTION, INTERRUPTED_EXIT, USAGE_EXIT, ZakazGroup, app

runner = CliRunner()

#: The two ways the command is started: the installed script and `python -m zakaz_common`.
ENTRY_POINTS = {
    "script": [str(Path(sys.executable).parent / "zakaz")],
    "module": [sys.executable, "-m", "zakaz_common"],
}


def _subprocess(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ZAKAZ_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "80",
    }
    return subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


def test_version_prints_the_installed_package_version() -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0, result.output
    assert result.stdout == f"zakaz {version(DISTRIBUTION)}\n"


@pytest.mark.parametrize(
    ("args", "what", "command"),
    [
        (["run", "--bogus"], "no such option: --bogus", "zakaz run"),
        (["run"], "missing argument 'SOURCE'", "zakaz run"),
        (["run", "vk_ads", "--days", "many"], "invalid value for '--days'", "zakaz run"),
        (["run", "vk_ads", "--days", "0"], "invalid value for '--days'", "zakaz run"),
        (["run", "vk_ads", "--since", "01.06.2025"], "use YYYY-MM-DD", "zakaz run"),
        (["backup", "--keep", "0"], "invalid value for '--keep'", "zakaz backup"),
        (["nosuch"], "no such command 'nosuch'", "zakaz"),
        (["run", "nosuch"], "invalid value for SOURCE: unknown source 'nosuch'", "zakaz run"),
        (["stauts"], "did you mean 'status'?", "zakaz"),
        (
            ["backfill", "vk_ads", "--since", "2025-06-01"],
            "missing option '--to'",
            "zakaz backfill",
        ),
    ],
    ids=[
        "unknown_option",
        "missing_argument",
        "not_a_number",
        "out_of_range",
        "bad_date",
        "keep_zero",
        "unknown_command",
        "unknown_source",
        "typo_command",
        "missing_option",
    ],
)
def test_a_usage_error_is_one_line_naming_the_help_and_exits_2(
    args: list[str], what: str, command: str
) -> None:
    result = runner.invoke(app, args)

    assert result.exit_code == USAGE_EXIT, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    assert what in lines[0]
    assert lines[0].endswith(f"see `{command} --help`"), lines


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_both_entry_points_report_errors_the_same_way(entry: str, tmp_path: Path) -> None:
    argv = ENTRY_POINTS[entry]

    usage = _subprocess([*argv, "run", "--bogus"], tmp_path)
    failure = _subprocess([*argv, "restore", "nosuch"], tmp_path)
    shown = _subprocess([*argv, "--version"], tmp_path)

    assert usage.returncode == 2, usage.stderr
    assert usage.stderr == "error: no such option: --bogus; see `zakaz run --help`\n"
    assert failure.returncode == 1, failure.stderr
    assert len(failure.stderr.splitlines()) == 1, failure.stderr
    assert failure.stderr.startswith("error: no backup named 'nosuch'")
    assert shown.returncode == 0 and shown.stdout == f"zakaz {version(DISTRIBUTION)}\n"
    for result in (usage, failure):
        assert "Traceback" not in result.stderr and "╭" not in result.stderr


def test_ctrl_c_in_any_command_exits_130() -> None:
    # A command of its own on the real group: the signal is real, delivered to this process.
    probe = typer.Typer(cls=ZakazGroup, add_completion=False)

    @probe.command()
    def wait() -> None:
        os.kill(os.getpid(), signal.SIGINT)

    @probe.command()
    def other() -> None:
        """A second command, so that `wait` stays a subcommand."""

    result = runner.invoke(probe, ["wait"])

    assert result.exit_code == INTERRUPTED_EXIT, result.output


def _help_pages() -> dict[str, str]:
    group = get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    pages = {"zakaz": runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout}
    for name in group.list_commands(typer.Context(group)):
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        pages[f"zakaz {name}"] = result.stdout
    return pages


def test_every_help_page_is_plain_and_tells_the_truth() -> None:
    pages = _help_pages()

    assert {"zakaz run", "zakaz status", "zakaz backup", "zakaz up"} <= set(pages)
    for name, page in pages.items():
        assert page.startswith(f"Usage: {name} "), (name, page)
        assert "<bool>" not in page, (name, page)
        assert "[[" not in page, (name, page)
        assert "╭" not in page and "│" not in page, (name, page)
        assert max(len(line) for line in page.splitlines()) <= 80, (name, page)
    listed = pages["zakaz"].split("Commands:")[1].splitlines()
    assert not [line for line in listed if line.endswith("...")], listed  # cut short
    assert "[default: 0]" not in pages["zakaz backup"]
    assert "ZAKAZ_BACKUP_KEEP, else 14" in pages["zakaz backup"]
    assert "--restart " in pages["zakaz backfill"] and "--no-restart" not in pages["zakaz backfill"]
    assert "--version" in pages["zakaz"]
    assert "--since YYYY-MM-DD" in pages["zakaz run"] and "--days N" in pages["zakaz run"]


def test_no_arguments_prints_the_help() -> None:
    result = runner.invoke(app, [])

    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: zakaz ")
    assert "status" in result.stdout
