"""Every source's `zakaz run` stopped mid-load: SIGTERM, Ctrl-C and kill -9 while its upstream
hangs. Nothing stuck (no lock, no `running` row), nothing lost (views as before).

The runs are real processes (`python -m zakaz_common run <source>`), each source in a data
directory of its own, loaded once from the sandbox (served here, on loopback) before its faults;
the upstream a stopped run asks is a loopback server that never answers, so the signal lands
inside the source's load. The cases of a source run in order (SIGTERM, kill -9 and the run
after it, Ctrl-C) on the one load, each against the views the case before ended on; every case
notes its outcome in the fault matrix.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from drivers import SOURCES
from fault_support import FACTS, Matrix, differences
from process_support import FREED_WITHIN_SECONDS, ProcessStand, State, as_run
from zakaz_common.demo import sandbox
from zakaz_common.runs import ABANDONED_MESSAGE
from zakaz_common.testing import RedisServer


@dataclass
class Loaded:
    """A source loaded once, cleanly, in its own data directory; `last`: the latest state."""

    stand: ProcessStand
    good: State
    last: State


@pytest.fixture(scope="module")
def sandbox_settings(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, dict[str, str]]]:
    """The whole sandbox on loopback, for the module; each source's settings for it."""
    with sandbox(tmp_path_factory.mktemp("secrets")) as settings:
        yield settings


@pytest.fixture(scope="module", params=SOURCES)
def loaded(
    request: pytest.FixtureRequest,
    sandbox_settings: dict[str, dict[str, str]],
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Loaded:
    """One source after a good load: what every fault of that source is measured against."""
    source: str = request.param
    if redis_server.proc is None:
        redis_server.start()
    stand = ProcessStand(
        source, tmp_path_factory.mktemp(source), sandbox_settings[source], redis_server.url
    )
    first = stand.run()
    assert (first.exit_code, first.summary.get("status")) == (0, "success"), first.why()
    assert first.summary["lock"] == "redis", first.summary  # the real redis-server holds it
    good = stand.state()
    # A fact that stays empty would stay "unchanged" whatever a fault did (the source's main
    # fact comes first; gmail writes no dim_events_src rows of its own).
    main = FACTS[source][0]
    assert good.views[main], f"the good load left {main} empty"
    return Loaded(stand, good, good)


def test_a_run_stopped_by_sigterm_mid_load_is_recorded_interrupted_and_changes_nothing(
    loaded: Loaded, matrix: Matrix
) -> None:
    _stopped_case(loaded, matrix, signal.SIGTERM, 143)


def test_a_run_killed_mid_load_is_closed_by_the_next_run_which_loads_cleanly(
    loaded: Loaded, matrix: Matrix
) -> None:
    stand = loaded.stand
    known = {r["run_id"] for r in loaded.last.runs}
    killed = stand.stopped(signal.SIGKILL)
    since = time.monotonic()
    following, refused = stand.until_free()
    waited = time.monotonic() - since
    locked = stand.locked()
    after = stand.state()
    next_id = str(following.summary.get("run_id", ""))
    dead = [r for r in after.runs if r["run_id"] not in known and r["run_id"] != next_id]
    views = "as a clean load" if after.views == loaded.good.views else "CHANGED"
    # The killed process printed nothing: its row is what the next run left of it.
    dead_run = as_run(stand.source, killed, loaded.last, after)
    dead_run.row = dead[0] if len(dead) == 1 else None
    dead_run.exit_code = 128 + signal.SIGKILL
    dead_run.opened = []  # whatever opened, the next run's process opened it
    matrix.add(dead_run, "kill -9 mid-load (row as the next run closed it)", views)
    next_run = as_run(stand.source, following, loaded.last, after)
    matrix.add(next_run, "the run after a kill -9, upstream healthy", views)
    loaded.last = after

    assert killed.exit_code == -signal.SIGKILL, killed.why()
    assert (following.exit_code, following.summary.get("status")) == (0, "success"), following.why()
    assert waited < FREED_WITHIN_SECONDS, (
        f"the dead run held the source for {waited:.0f} s ({refused} runs turned away)"
    )
    assert [(r["status"], r["message"]) for r in dead] == [("error", ABANDONED_MESSAGE)], dead
    assert not locked, "a lock is left in Redis"
    assert after.running == [], after.running
    assert after.views == loaded.good.views, differences(loaded.good.views, after.views)


# After the kill -9 case, whose clean next run resolved the SIGTERM case's failure alert: so
# the matrix shows the alert this run opens, not one kept open.
def test_a_run_stopped_by_ctrl_c_mid_load_is_recorded_interrupted_and_changes_nothing(
    loaded: Loaded, matrix: Matrix
) -> None:
    _stopped_case(loaded, matrix, signal.SIGINT, 130)


def _stopped_case(loaded: Loaded, matrix: Matrix, how: signal.Signals, code: int) -> None:
    stand = loaded.stand
    before = loaded.last  # the good load's views (the kill -9 case ends on them too)
    stopped = stand.stopped(how)
    locked = stand.locked()
    after = stand.state()
    run = as_run(stand.source, stopped, before, after)
    loaded.last = after
    views = "unchanged" if after.views == before.views else "CHANGED"
    matrix.add(run, f"{how.name} mid-load", views)

    assert stopped.exit_code == code, stopped.why()
    message = f"interrupted by {how.name}"
    assert (stopped.summary.get("status"), stopped.summary.get("message")) == ("error", message)
    assert run.row is not None, stopped.why()
    assert (run.row["status"], run.row["message"]) == ("error", message)
    assert not locked, "the stopped run left its lock in Redis"
    assert after.running == [], after.running
    assert after.views == before.views, differences(before.views, after.views)
