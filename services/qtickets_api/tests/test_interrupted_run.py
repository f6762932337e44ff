"""`zakaz run qtickets_api` stopped while the upstream hangs: recorded `error`, lock let go."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from zakaz_common.locks import LOCK_TTL_ENV, lock_key

RUNS = """
import json

from zakaz_common.clickhouse import open_warehouse
from zakaz_common.runs import latest_runs
from zakaz_common.settings import CoreSettings, WarehouseSettings

wh = open_warehouse(WarehouseSettings(), CoreSettings())
print(json.dumps(latest_runs(wh, "qtickets_api"), default=str))
"""


@pytest.fixture
def hanging_upstream() -> Iterator[tuple[str, threading.Event]]:
    """A loopback server that accepts requests and never answers; the event: one arrived."""
    listener = socket.create_server(("127.0.0.1", 0))
    asked = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            asked.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", asked
    listener.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"]
)
def test_a_run_stopped_while_the_upstream_hangs_ends_as_interrupted(
    hanging_upstream: tuple[str, threading.Event],
    redis_url: str,
    tmp_path: Path,
    sig: signal.Signals,
    code: int,
) -> None:
    url, asked = hanging_upstream
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CH_", "QTICKETS_"))}
    env.update(
        ZAKAZ_DATA_DIR=str(tmp_path / "data"),
        REDIS_URL=redis_url,
        QTICKETS_BASE_URL=url,
        QTICKETS_TOKEN="t0ken-for-the-test",
        **{LOCK_TTL_ENV: "3"},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "zakaz_common", "run", "qtickets_api", "--days", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert asked.wait(90), "the run never asked the upstream"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == code, err
    summary = json.loads(out)
    assert (summary["status"], summary["message"]) == (
        "error",
        f"interrupted by {sig.name}",
    )
    assert not redis.Redis.from_url(redis_url).exists(lock_key("qtickets_api"))
    runs = subprocess.run(
        [sys.executable, "-c", RUNS], env=env, capture_output=True, text=True, check=True
    )
    assert [(r["status"], r["message"]) for r in json.loads(runs.stdout)] == [
        ("error", f"interrupted by {sig.name}")
    ]
