"""The process faults' stand: `zakaz run <source>` as a real subprocess with a data directory of
its own, an upstream that hangs so a run can be stopped inside its load, and what a run left
behind read back through another short subprocess.

An embedded warehouse belongs to one process and the test's process has its own, so every read
of a run's warehouse (runs, alerts, views, facts) goes through `python -c STATE` in the same
data directory, after the run's process has ended. Redis, where the lock lives, is read
directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import redis
from fault_support import FACTS, FAST_RETRIES, Run, Snapshot
from zakaz_common.alerts import Alert
from zakaz_common.deadline import override_variable
from zakaz_common.localserver import silent_server
from zakaz_common.locks import LOCK_TTL_ENV, lock_key

#: Each source's base-URL setting, and what follows the host in it (the sandbox's layout).
BASE_URLS: Final = {
    "qtickets_sheets": ("SHEETS_API_URL", ""),
    "qtickets_api": ("QTICKETS_BASE_URL", "/api/rest/v1"),
    "vk_ads": ("VK_API_URL", ""),
    "direct": ("DIRECT_API_URL", "/json/v5"),
    "gmail": ("GMAIL_API_URL", ""),
}

#: The shortest lock TTL the locks allow: a killed run's lock lapses within seconds.
LOCK_TTL: Final = "3"

#: A deadline far beyond the test's wait, so only the signal can end a hung run.
DEADLINE_SECONDS: Final = "120"

#: How long the next run may find the source taken by a killed one (the issue's bound).
FREED_WITHIN_SECONDS: Final = 120.0

#: Seconds a run gets to reach its upstream, and a stopped run to record itself and exit.
START_SECONDS: Final = 90.0
STOP_SECONDS: Final = 60.0

#: Read in a fresh process on the run's data directory: runs, open alerts, views and facts.
STATE: Final = """
import json
import sys

from fault_support import snapshot
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import open_warehouse
from zakaz_common.runs import latest_runs, open_runs
from zakaz_common.settings import CoreSettings, WarehouseSettings

source = sys.argv[1]
wh = open_warehouse(WarehouseSettings(), CoreSettings())
print(json.dumps({
    "runs": latest_runs(wh, source, limit=50),
    "running": open_runs(wh, source),
    "alerts": [vars(a) for a in open_alerts(wh, source)],
    "views": snapshot(wh, source),
}, default=str))
"""


@dataclass
class State:
    """What a data directory holds for a source, read after its runs ended."""

    runs: list[dict[str, Any]]
    running: list[dict[str, Any]]
    alerts: list[Alert]
    views: Snapshot

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The recorded row of a run, or None."""
        return next((r for r in self.runs if r["run_id"] == run_id), None)


@dataclass
class Finished:
    """One `zakaz run` process that ended: how, and the JSON summary it printed."""

    exit_code: int
    out: str
    err: str

    @property
    def summary(self) -> dict[str, Any]:
        """The run's JSON summary ({} when the command printed none)."""
        text = self.out.strip()
        found: dict[str, Any] = json.loads(text) if text.startswith("{") else {}
        return found

    def why(self) -> str:
        """The command's last words: an assertion's explanation."""
        return f"exit {self.exit_code}: {self.out[-400:]} {self.err[-600:]}"


@dataclass
class ProcessStand:
    """`zakaz run <source>` in `workdir/data`, its settings pointing at the sandbox."""

    source: str
    workdir: Path
    settings: dict[str, str]
    redis_url: str
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CH_", "ZAKAZ_"))}
        self.env.update(
            self.settings,
            **FAST_RETRIES,
            ZAKAZ_DATA_DIR=str(self.workdir / "data"),
            REDIS_URL=self.redis_url,
            # The state script imports fault_support, beside this module.
            PYTHONPATH=str(Path(__file__).parent),
            **{LOCK_TTL_ENV: LOCK_TTL, override_variable(self.source): DEADLINE_SECONDS},
        )

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "zakaz_common", "run", self.source]

    def run(self) -> Finished:
        """`zakaz run <source>` to its end, upstream healthy."""
        done = subprocess.run(  # noqa: PLW1510 - the exit code is what the tests look at
            self._command(),
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=START_SECONDS + STOP_SECONDS,
        )
        return Finished(done.returncode, done.stdout, done.stderr)

    def stopped(self, how: signal.Signals) -> Finished:
        """`zakaz run <source>` with its upstream hanging, sent `how` once it asked it."""
        variable, path = BASE_URLS[self.source]
        asked = threading.Event()
        with silent_server(accepted=asked) as url:
            proc = subprocess.Popen(
                self._command(),
                env={**self.env, variable: url + path},
                cwd=self.workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a Ctrl-C at the test's terminal does not reach it
            )
            try:
                deadline = time.monotonic() + START_SECONDS
                while not asked.wait(0.05):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        proc.kill()  # if it still runs: hung before its upstream
                        out, err = proc.communicate()
                        raise AssertionError(f"the run never asked its upstream: {out} {err}")
                proc.send_signal(how)
                out, err = proc.communicate(timeout=STOP_SECONDS)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return Finished(proc.returncode, out, err)

    def until_free(self) -> tuple[Finished, int]:
        """`zakaz run <source>` again and again while a dead run holds the source; the run
        that got through and how many were turned away."""
        since = time.monotonic()
        refused = 0
        while True:
            done = self.run()
            if "already in progress" not in done.out + done.err:
                return done, refused
            refused += 1
            if time.monotonic() - since > FREED_WITHIN_SECONDS:
                return done, refused
            time.sleep(0.5)

    def locked(self) -> bool:
        """Whether the source's lock is held in Redis."""
        return bool(redis.Redis.from_url(self.redis_url).exists(lock_key(self.source)))

    def state(self) -> State:
        """What the data directory holds for the source (read in a short subprocess)."""
        done = subprocess.run(
            [sys.executable, "-c", STATE, self.source],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=STOP_SECONDS,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        views = {table: [tuple(row) for row in rows] for table, rows in found["views"].items()}
        assert set(views) >= set(FACTS[self.source]), sorted(views)
        alerts = [_alert(a) for a in found["alerts"]]
        return State(found["runs"], found["running"], alerts, views)


def as_run(source: str, finished: Finished, before: State, after: State) -> Run:
    """A finished process in the fault suite's terms (for the matrix): its recorded row and the
    alerts it opened."""
    summary = finished.summary
    row = after.run(str(summary.get("run_id", "")))
    known = {a.alert_id for a in before.alerts}
    opened = [a for a in after.alerts if a.alert_id not in known]
    kinds = sorted(a.kind for a in after.alerts)
    return Run(
        source, finished.exit_code, finished.out + finished.err, summary, row, opened, [], kinds
    )


def _alert(found: dict[str, Any]) -> Alert:
    resolved = found["resolved_at"]
    return Alert(
        found["alert_id"],
        datetime.fromisoformat(found["created_at"]),
        found["job"],
        found["severity"],
        found["kind"],
        found["message"],
        bool(found["notified"]),
        None if resolved in (None, "None") else datetime.fromisoformat(resolved),
    )
