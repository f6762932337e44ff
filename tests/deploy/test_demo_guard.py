"""infra/demo/guard.sh: a container holding a demo value starts only while the demo's sandbox
answers. Run with each guarded service's environment as Compose resolves it with no `.env`,
against the real sandbox app over HTTP, or against nothing (production)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from deploy_compose import GUARD, active, demo_values, holds_demo_value, resolve
from zakaz_common.testing import free_port, serving
from zakaz_sandbox.app import create_app as sandbox_app

#: Services of `--profile demo` started through the guard, resolved with an empty environment.
GUARDED = {
    name: service
    for name, service in active(resolve({}), "demo").items()
    if holds_demo_value(service)
}
#: What the guard runs when it lets a container start.
STARTED = "container command ran"


def guard(
    env: dict[str, str], sandbox_url: str, *, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run guard.sh with exactly `env` (plus PATH), asking `sandbox_url`; it then runs `echo`."""
    full = {
        **env,
        "PATH": path or os.environ["PATH"],
        "ZAKAZ_DEMO_SANDBOX_URL": f"{sandbox_url}/healthz",
        "ZAKAZ_DEMO_WAIT": "0",
    }
    return subprocess.run(
        ["/bin/sh", str(GUARD), "echo", STARTED],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )


def nothing_listens() -> str:
    """A loopback URL where no sandbox answers (a production server has none)."""
    return f"http://127.0.0.1:{free_port()}"


def environment(service: str) -> dict[str, str]:
    """The service's environment as Compose gives it to the container with no `.env`."""
    return {k: str(v) for k, v in GUARDED[service]["environment"].items()}


def python_only_path(tmp_path: Path) -> str:
    """A PATH with what the guard needs but no wget, as in the zakaz images (python only)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("env", "sed", "sort", "dirname", "date", "sleep", "cat", "echo", "python3"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize("service", sorted(GUARDED))
def test_a_demo_value_is_refused_without_the_sandbox(service: str) -> None:
    done = guard(environment(service), nothing_listens())

    assert done.returncode == 1
    assert STARTED not in done.stdout
    assert "refusing to start" in done.stderr
    for name in holds_demo_value(GUARDED[service]):
        assert name in done.stderr
    # The refusal names the variables, never the demo's values.
    for value in demo_values().values():
        assert value not in done.stderr


@pytest.mark.parametrize("probe", ["wget", "python"])
@pytest.mark.parametrize("service", ["health", "clickhouse", "caddy"])
def test_a_demo_value_starts_while_the_sandbox_answers(
    service: str, probe: str, tmp_path: Path
) -> None:
    if probe == "wget" and shutil.which("wget") is None:
        pytest.fail("wget is not installed (apt-get install -y wget)", pytrace=False)
    path = python_only_path(tmp_path) if probe == "python" else None

    with serving(sandbox_app()) as base_url:
        done = guard(environment(service), base_url, path=path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == STARTED
    assert "demo defaults in use" in done.stderr


def test_production_values_start_at_once_without_asking_for_a_sandbox() -> None:
    real = {name: f"real-{name.lower()}" for name in demo_values()}
    services = active(resolve(real))

    for name in GUARDED:
        if name not in services:
            continue
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        done = guard(env, nothing_listens())
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert done.stdout.strip() == STARTED
        assert done.stderr == ""


def test_one_demo_value_among_real_ones_is_still_refused() -> None:
    real = {name: f"real-{name.lower()}" for name in demo_values()}
    del real["CH_BACKUP_PASSWORD"]
    health = {k: str(v) for k, v in active(resolve(real))["health"]["environment"].items()}

    done = guard(health, nothing_listens())

    assert done.returncode == 1
    assert "CH_BACKUP_PASSWORD" in done.stderr and "CH_PASSWORD" not in done.stderr


def test_the_guard_needs_a_command() -> None:
    done = subprocess.run(
        ["/bin/sh", str(GUARD)], capture_output=True, text=True, timeout=30, check=False
    )

    assert done.returncode == 2 and "usage" in done.stderr
