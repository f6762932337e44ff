"""`zakaz serve sandbox` as the compose demo runs it: healthy only once the demo settings exist."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
from zakaz_common.testing import free_port


def test_serve_sandbox_writes_every_sources_settings_then_reports_healthy(tmp_path: Path) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    env = {
        **os.environ,
        "ZAKAZ_SANDBOX_SECRETS_DIR": str(secrets),
        "ZAKAZ_SANDBOX_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ZAKAZ_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "zakaz_common", "serve", "sandbox", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, status = time.monotonic() + 60, 0
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except httpx.HTTPError:
                status = 0
            time.sleep(0.2)
        assert status == 200
        for source in ("qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail"):
            path = secrets / f".env.{source}"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert f"127.0.0.1:{port}" in path.read_text()
        assert (
            f'"token_uri": "http://127.0.0.1:{port}/token"'
            in (secrets / "google" / "sa.json").read_text()
        )
        assert (secrets / "gmail" / "token.json").is_file()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _start(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zakaz_common", "serve", "sandbox", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _healthy(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the sandbox never reported healthy")


def _stopped(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    return out


def test_serve_sandbox_prints_the_settings_that_point_every_source_at_it(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAKAZ_SANDBOX_")}
    env["ZAKAZ_DATA_DIR"] = str(tmp_path / "data")
    proc = _start(env, port)
    try:
        _healthy(port, proc)
    finally:
        out = _stopped(proc) if proc.poll() is None else ""
    exported = dict(re.findall(r"^export (\w+)=(\S+)$", out, re.M))
    assert f"sandbox upstreams at http://127.0.0.1:{port}" in out
    for name in ("SHEETS_API_URL", "QTICKETS_BASE_URL", "VK_API_URL", "DIRECT_API_URL"):
        assert exported[name].startswith(f"http://127.0.0.1:{port}"), exported
    assert Path(exported["GSERVICE_JSON"]).is_file()
    assert Path(exported["GSERVICE_JSON"]).is_relative_to(tmp_path / "data" / "sandbox-secrets")
    assert {"QTICKETS_TOKEN", "VK_CLIENT_SECRET", "DIRECT_TOKEN", "GMAIL_DIR"} <= set(exported)


def test_serve_sandbox_never_replaces_a_secret_it_did_not_write(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "google").mkdir(parents=True)
    real_key = secrets / "google" / "sa.json"
    real_key.write_text('{"type": "service_account", "private_key": "the real one"}')
    env = {
        **os.environ,
        "ZAKAZ_SANDBOX_SECRETS_DIR": str(secrets),
        "ZAKAZ_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("ZAKAZ_SANDBOX_OVERWRITE", None)
    refused = subprocess.run(
        [sys.executable, "-m", "zakaz_common", "serve", "sandbox", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: the sandbox would replace files it did not write")
    assert str(real_key) in refused.stderr and "ZAKAZ_SANDBOX_OVERWRITE=1" in refused.stderr
    assert "the real one" in real_key.read_text()
    assert not (secrets / ".env.vk_ads").exists()

    # Asked to, it replaces them; started again over its own files, it needs no asking.
    for extra in ({"ZAKAZ_SANDBOX_OVERWRITE": "1"}, {}):
        port = free_port()
        proc = _start(
            {**env, **extra, "ZAKAZ_SANDBOX_PUBLIC_URL": f"http://127.0.0.1:{port}"}, port
        )
        try:
            _healthy(port, proc)
        finally:
            out = _stopped(proc) if proc.poll() is None else ""
        assert "the real one" not in real_key.read_text()
        assert str(secrets / ".env.vk_ads") in out
        assert f"127.0.0.1:{port}" in (secrets / ".env.vk_ads").read_text()
