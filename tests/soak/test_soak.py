"""The two-hour simulated day (`python -m soak --hours 2`): one SIGKILL and restart of `zakaz up`,
a 429 storm and a broken Sheets header, then every end check (slots, runs, locks, alerts, the
status page, the BI views against a clean load). The full day is `make soak`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Real seconds the two-hour day may take before the test gives up on it.
LIMIT_SECONDS = 600


@pytest.mark.timeout(LIMIT_SECONDS + 60)
def test_two_hour_day_passes_every_check(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "soak", "--hours", "2", "--dir", str(tmp_path / "day")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT_SECONDS,
        check=False,
    )
    table = done.stdout[-6000:]
    assert done.returncode == 0, f"{table}\n{done.stderr[-3000:]}"
    for check in ("every slot ran exactly once", "no lock held", "v_sales_latest = clean load"):
        assert check in table
    assert "FAILED" not in table
