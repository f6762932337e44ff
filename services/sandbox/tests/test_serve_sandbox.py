"""`zakaz serve sandbox` as the compose demo runs it: healthy only once the demo settings exist."""

from __future__ import annotations

import os
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
