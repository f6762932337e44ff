"""Walking `zakaz up` through a simulated day, slot by slot, with the plan's faults on the way."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]

from soak.plan import SCHEDULES, SOURCES, Fault, Plan
from soak.stack import Stack

log = logging.getLogger(__name__)

MSK = ZoneInfo("Europe/Moscow")

#: Real seconds a slot's runs get to finish (retries included) before the day gives up on them.
SLOT_TIMEOUT_SECONDS = 120.0

#: Real seconds between two looks at the run log.
POLL_SECONDS = 0.1

#: Virtual seconds past a slot the clock is set to: the scheduler's next tick fires it.
PAST_SLOT_SECONDS = 1


@dataclass
class Slot:
    """One due slot of one schedule."""

    name: str
    at: float  # virtual Unix time


@dataclass
class DayLog:
    """What happened, for the checks."""

    day_start: float
    day_end: float = 0.0
    slots: list[Slot] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    kills: list[tuple[float, list[str]]] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    #: The source slots that had to fire (gmail's only while gmail was on): (source, slot).
    expected: list[tuple[str, float]] = field(default_factory=list)
    #: Runs asked for by hand through `/local/runs`: (source, moment).
    by_hand: list[tuple[str, float]] = field(default_factory=list)


def day_start() -> float:
    """The next midnight, Moscow time, after now (a virtual day in the future)."""
    now = datetime.now(MSK)
    midnight = datetime(now.year, now.month, now.day, tzinfo=MSK) + timedelta(days=1)
    return midnight.timestamp()


def due_slots(start: float, end: float) -> list[Slot]:
    """Every slot of every schedule in (start, end], in time order."""
    found = []
    for name, cron in SCHEDULES.items():
        it = croniter(cron, datetime.fromtimestamp(start, MSK))
        while True:
            at = it.get_next(datetime).timestamp()
            if at > end:
                break
            found.append(Slot(name, at))
    return sorted(found, key=lambda s: (s.at, s.name))


def walk(stack: Stack, plan: Plan) -> DayLog:
    """Run the day: start `zakaz up`, step the clock to each slot, apply faults, wait for runs."""
    midnight = day_start()
    begin = midnight + plan.start_minute * 60
    end = begin + plan.hours * 3600
    day = DayLog(day_start=begin)
    stack.set_virtual(begin - 60)
    # The operator keeps the backup channel on (the plan hands it to the failover for a while).
    stack.redis().set("zakaz:enabled:gmail", "1")
    stack.start_up()
    _wait_idle(stack, day, "first loads", since=begin - 600)
    slots = due_slots(begin - 1, end)
    # Gmail is off by default; slots of gmail only fire while it is on (the plan switches it).
    times = sorted({s.at for s in slots} | {midnight + f.minute * 60 for f in plan.faults})
    faults = sorted(plan.faults, key=lambda f: f.minute)
    for moment in times:
        if moment < begin or moment > end:
            continue
        kill = False
        runs: list[str] = []
        while faults and midnight + faults[0].minute * 60 <= moment:
            fault = faults.pop(0)
            at = midnight + fault.minute * 60
            if at < begin:
                continue
            kill = kill or fault.kill
            runs.extend(fault.runs)
            _apply(stack, day, fault, at)
        here = [s for s in slots if s.at == moment]
        stack.set_virtual(moment + PAST_SLOT_SECONDS)
        day.slots.extend(here)
        if kill:
            day.expected.extend(
                (s.name, s.at) for s in here if s.name in SOURCES and _enabled(stack, s.name)
            )
            _kill_mid_load(stack, day, moment)
            _wait_after_kill(stack, day, here, moment)
            continue
        for source in runs:
            stack.local("POST", "/local/runs", {"source": source})
            day.by_hand.append((source, moment))
        _wait_slot(stack, day, here, moment, runs)
    day.day_end = stack.virtual_now()
    return day


def _apply(stack: Stack, day: DayLog, fault: Fault, at: float) -> None:
    log.info("%s  %s", _clock(at), fault.name)
    day.faults.append((at, fault.name))
    if fault.act is not None:
        stack.set_virtual(at - 60)
        try:
            fault.act(stack)
        except Exception as exc:  # a fault that could not be injected fails the day, not the run
            day.timeouts.append(f"{_clock(at)}: {fault.name} could not be done: {exc}")


def _kill_mid_load(stack: Stack, day: DayLog, moment: float) -> None:
    """SIGKILL `zakaz up` once a load of this slot is running, then start it again."""
    deadline = time.monotonic() + SLOT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        running = stack.sql(
            "SELECT job FROM meta_job_runs WHERE status = 'running' "
            f"AND toUnixTimestamp(started_at) >= {int(moment)}"
        )
        if running:
            stack.kill_up()
            day.kills.append((moment, sorted(r["job"] for r in running)))
            log.info(
                "%s  SIGKILL while %s ran", _clock(moment), ", ".join(r["job"] for r in running)
            )
            stack.start_up()
            return
        time.sleep(0.02)
    day.timeouts.append(f"{_clock(moment)}: no load ran to kill")


def _wait_after_kill(stack: Stack, day: DayLog, slots: list[Slot], moment: float) -> None:
    """After the restart: wait until each of the slot's runs finished, or is known killed (its
    row `running` while its RQ worker is gone: the source's next trigger closes it)."""
    from rq import Worker
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    sources = {s.name for s in slots if s.name in SOURCES and _enabled(stack, s.name)}
    deadline = time.monotonic() + SLOT_TIMEOUT_SECONDS
    killed: set[str] = set()
    while time.monotonic() < deadline:
        rows = stack.sql(
            "SELECT job, argMax(status, _ver) AS status, argMax(run_id, _ver) AS run_id, "
            "argMax(message, _ver) AS message "
            f"FROM meta_job_runs WHERE toUnixTimestamp(started_at) >= {int(moment)} GROUP BY job"
        )
        conn = stack.redis()
        live = {w.name for w in Worker.all(connection=conn)}
        done = set()
        for row in rows:
            if row["status"] == "error" and str(row["message"]).startswith("abandoned"):
                killed.add(row["job"])  # the health sweeper closed the killed run's row
            elif row["status"] in ("success", "error"):
                done.add(row["job"])
            elif row["status"] == "running":
                try:
                    worker = Job.fetch(row["run_id"], connection=conn).worker_name
                except NoSuchJobError:
                    worker = None
                if worker not in live:
                    killed.add(row["job"])
        pending = {k.decode().rsplit(":", 1)[-1] for k in conn.scan_iter("zakaz:pending:*")}
        if sources <= done | killed and pending <= killed:
            break
        time.sleep(POLL_SECONDS)
    else:
        day.timeouts.append(
            f"{_clock(moment)}: {', '.join(sorted(sources))} did not finish after the restart"
        )
    for at, jobs in day.kills:
        if at == moment:
            jobs[:] = sorted(set(jobs) | killed)


def _wait_slot(
    stack: Stack, day: DayLog, slots: list[Slot], moment: float, extra: list[str]
) -> None:
    sources = {s.name for s in slots if s.name in SOURCES and _enabled(stack, s.name)}
    day.expected.extend((name, moment) for name in sorted(sources))
    sources |= set(extra)
    system = [s for s in slots if s.name not in SOURCES]
    deadline = time.monotonic() + SLOT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if _started(stack, sources, moment) and _idle(stack) and _system_done(stack, system):
            return
        time.sleep(POLL_SECONDS)
    day.timeouts.append(f"{_clock(moment)}: {', '.join(sorted(sources))} did not finish")


def _wait_idle(stack: Stack, day: DayLog, what: str, since: float) -> None:
    deadline = time.monotonic() + SLOT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if _started(stack, set(SOURCES), since) and _idle(stack):
            return
        time.sleep(POLL_SECONDS)
    day.timeouts.append(f"{what} did not finish")


def _started(stack: Stack, sources: set[str], since: float) -> bool:
    if not sources:
        return True
    rows = stack.sql(
        f"SELECT DISTINCT job FROM meta_job_runs WHERE toUnixTimestamp(started_at) >= {int(since)}"
    )
    return sources <= {r["job"] for r in rows}


def _idle(stack: Stack) -> bool:
    """No run queued or running (a killed run's row waits for the next trigger to close it),
    and no run pending in Redis (a transient failure waiting for its retry)."""
    return next(iter(stack.redis().scan_iter("zakaz:pending:*")), None) is None


def _system_done(stack: Stack, system: list[Slot]) -> bool:
    from rq.job import Job, JobStatus

    conn = stack.redis()
    for slot in system:
        stamp = datetime.fromtimestamp(slot.at, UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            job = Job.fetch(f"zakaz-{slot.name}-{stamp}", connection=conn)
        except Exception:
            return False
        if job.get_status() not in (JobStatus.FINISHED, JobStatus.FAILED):
            return False
    return True


def _enabled(stack: Stack, source: str) -> bool:
    raw = stack.redis().get(f"zakaz:enabled:{source}")
    if raw is None:
        return source != "gmail"  # gmail is the only source off by default
    return raw == b"1"


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, MSK).strftime("%H:%M")
