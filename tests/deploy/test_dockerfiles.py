"""services/*/Dockerfile and .dockerignore: hadolint, the rules of issue 9, and each image's build
stage replayed without Docker (its COPYs from the filtered context, its `uv sync` commands)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_dockerfile import DockerIgnore, Stage, parse
from deploy_support import IMAGES, ROOT, tool

DOCKERFILES = {name: ROOT / "services" / name / "Dockerfile" for name in IMAGES}
IGNORE = DockerIgnore(ROOT / ".dockerignore")

#: A base image pinned to a version: a tag with a digit (never `latest`), or a digest.
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def stages(name: str) -> list[Stage]:
    """The stages of one service's Dockerfile."""
    return parse(DOCKERFILES[name])


def test_every_service_has_a_dockerfile() -> None:
    assert sorted(p.parent.name for p in ROOT.glob("services/*/Dockerfile")) == sorted(IMAGES)
    assert all(p.is_file() for p in DOCKERFILES.values())


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_hadolint_passes(name: str) -> None:
    done = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILES[name])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_images_are_multi_stage_from_pinned_bases(name: str) -> None:
    found = stages(name)

    assert len(found) >= 3
    for stage in found:
        assert PINNED.match(stage.image), stage.image
        assert ":" in stage.image or "@" in stage.image, f"{stage.image} is not pinned"
        assert not stage.image.endswith(":latest")
    assert found[-1].image == found[1].image, "runtime and build stages use different Pythons"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_uv_syncs_frozen_in_two_layers(name: str) -> None:
    build = next(s for s in stages(name) if s.name == "build")
    syncs = [r.args for r in build.all("RUN") if "uv sync" in r.args]
    packages = [f"--package {p}" for p in IMAGES[name]]

    assert len(syncs) == 2, syncs
    assert all("--frozen" in s and "--no-dev" in s for s in syncs)
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]
    for sync in syncs:
        assert all(p in sync for p in packages), sync
        assert len(re.findall(r"--package ", sync)) == len(packages), sync


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_first_layer_copies_only_the_lock_and_the_manifests(name: str) -> None:
    build = next(s for s in stages(name) if s.name == "build")
    before_first_sync = []
    for instruction in build.instructions:
        if instruction.keyword == "RUN" and "uv sync" in instruction.args:
            break
        if instruction.keyword == "COPY" and "from" not in instruction.flags:
            before_first_sync.extend(instruction.words[:-1])
    assert before_first_sync
    for source in before_first_sync:
        assert source in {"pyproject.toml", "uv.lock"} or source.endswith("/pyproject.toml"), source


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_runtime_runs_unprivileged_with_a_healthcheck(name: str) -> None:
    runtime = stages(name)[-1]
    user = runtime.all("USER")
    healthcheck = runtime.all("HEALTHCHECK")
    command = runtime.all("CMD")

    assert user, "no USER"
    uid = user[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"USER {user[-1].args} is not an unprivileged uid"
    assert healthcheck and "/healthz" in healthcheck[0].args
    assert command and command[0].words[:3] == ["zakaz", "serve", name]
    assert f"ZAKAZ_SERVICE={name}" in " ".join(e.args for e in runtime.all("ENV"))


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_no_secret_is_added_to_any_layer(name: str) -> None:
    for stage in stages(name):
        assert not stage.all("ADD"), "use COPY, never ADD"
        assert not stage.all("ARG") or all(
            not re.search(r"PASSWORD|TOKEN|SECRET|KEY", a.args, re.IGNORECASE)
            for a in stage.all("ARG")
        )
        for copy in stage.all("COPY"):
            for source in copy.words[:-1]:
                assert "secret" not in source.lower() and ".env" not in source, source
        for env in stage.all("ENV"):
            assert not re.search(r"(PASSWORD|TOKEN|SECRET)=", env.args), env.args


def test_the_build_context_keeps_secrets_and_local_state_out() -> None:
    for path in (
        "secrets/.env.vk_ads",
        "secrets/google/sa.json",
        ".env",
        "data/warehouse/owner.json",
        ".venv/bin/python",
        ".git/config",
        "libs/zakaz_common/tests/test_cli.py",
        "services/vk_ads/tests/test_client.py",
        "services/health/src/zakaz_health/__pycache__/app.cpython-311.pyc",
    ):
        assert IGNORE.ignored(path), path
    context = IGNORE.context(ROOT)
    assert not [p for p in context if "secret" in p or ".env" in p]
    assert "uv.lock" in context
    assert "infra/clickhouse/migrations/0001_meta.sql" in context


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    done = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
    )
    if done.returncode == 0:
        return [sys.executable, "-m", "uv"]
    pytest.fail("uv is not installed; install it with: pip install uv", pytrace=False)


def _replay_build(name: str, workdir: Path) -> Path:
    """Replay the build stage: COPY from the filtered context, then its RUN uv sync commands."""
    build = next(s for s in stages(name) if s.name == "build")
    context = IGNORE.context(ROOT)
    src = workdir / "src"
    venv = workdir / "venv"
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"):
        env.pop(key, None)
    for instruction in build.instructions:
        if instruction.keyword == "ENV":
            env.update(dict(w.split("=", 1) for w in instruction.words))
        elif instruction.keyword == "COPY" and "from" not in instruction.flags:
            *sources, dest = instruction.words
            for source in sources:
                prefix = source.rstrip("/")
                matched = [p for p in context if p == prefix or p.startswith(prefix + "/")]
                assert matched, f"COPY {source}: nothing in the build context"
                for rel in matched:
                    inside = Path(rel).name if rel == prefix else rel[len(prefix) + 1 :]
                    target = src / dest / inside
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / rel, target)
        elif instruction.keyword == "RUN" and "uv sync" in instruction.args:
            env.update(
                {
                    "UV_PROJECT_ENVIRONMENT": str(venv),
                    "UV_PYTHON": getattr(sys, "_base_executable", sys.executable),
                    # A throwaway environment: link, not copy, and skip bytecode (speed only).
                    "UV_COMPILE_BYTECODE": "0",
                    "UV_LINK_MODE": "symlink",
                }
            )
            words = instruction.words
            done = subprocess.run(
                [*_uv(), *words[1:]],
                cwd=src,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, f"{instruction.args}\n{done.stderr[-3000:]}"
    return venv


@pytest.fixture
def build_dir(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory for one replayed build, removed afterwards (environments are large)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_build_stage_installs_the_service_without_docker(name: str, build_dir: Path) -> None:
    tmp_path = build_dir
    venv = _replay_build(name, tmp_path)
    python = venv / "bin" / "python"
    modules = [p.replace("-", "_") for p in IMAGES[name]]
    probe = (
        "import importlib, importlib.resources as r, json, sys;"
        f"mods = {modules!r};"
        "[importlib.import_module(m) for m in mods];"
        "common = r.files('zakaz_common');"
        "print(json.dumps({"
        "'migrations': sorted(p.name for p in (common / 'migrations').iterdir()),"
        "'templates': sorted(p.name for p in (r.files('zakaz_health') / 'templates').iterdir())"
        " if 'zakaz_health' in mods else [],"
        "'sandbox': importlib.util.find_spec('zakaz_sandbox') is not None,"
        "'pytest': importlib.util.find_spec('pytest') is not None,"
        "'editable': 'src' in (importlib.util.find_spec('zakaz_common').origin or ''),"
        "}))"
    )
    done = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    shipped = sorted(p.name for p in (ROOT / "infra" / "clickhouse" / "migrations").glob("*.sql"))
    assert found["migrations"] == shipped
    assert found["sandbox"] is (name == "sandbox")
    assert found["pytest"] is False, "dev dependencies in the image"
    assert found["editable"] is False, "workspace packages must be installed as wheels"
    if name == "health":
        assert "status.html" in found["templates"]
    cli = subprocess.run(
        [str(venv / "bin" / "zakaz"), "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
