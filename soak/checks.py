"""What must hold at the end of a simulated day, each check a row of the final table."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rq.job import Job, JobStatus

from soak.day import MSK, DayLog, _clock
from soak.plan import SOURCES, Plan
from soak.stack import Stack, _zakaz

#: The BI views of CONTRACT §4 compared with a clean load, and the columns left out: when a row
#: was loaded is not data (v_data_freshness is all about when, so it is not compared).
VIEWS: dict[str, tuple[str, ...]] = {
    "v_sales_latest": (),
    "v_sales_14d": (),
    "v_marketing_daily": (),
    "v_campaign_performance": (),
    "v_romi_kpi": (),
    "v_inventory": ("updated_at",),
}

#: Real seconds a `zakaz run` or `zakaz sql` of the clean load may take.
COMMAND_SECONDS = 300


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def slots_ran_once(stack: Stack, day: DayLog, plan: Plan) -> Check:
    """Each due slot has exactly one run; a failed one is inside an incident or was killed, and
    the source's next slot succeeded (the retry)."""
    rows = stack.sql(
        "SELECT run_id, job, status, toUnixTimestamp(started_at) AS at FROM meta_job_runs "
        "WHERE trigger = 'schedule' ORDER BY started_at"
    )
    problems: list[str] = []
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_source.setdefault(row["job"], []).append(row)
    killed = {(job, at) for at, jobs in day.kills for job in jobs}
    claimed: set[str] = set()
    failed = 0
    for source, at in day.expected:
        runs = [r for r in by_source.get(source, []) if at <= r["at"] < at + 15 * 60 - 1]
        claimed.update(r["run_id"] for r in runs)
        if len(runs) != 1:
            problems.append(f"{source} {_clock(at)}: {len(runs)} runs")
            continue
        status = runs[0]["status"]
        if status == "success":
            continue
        failed += 1
        allowed = (source, at) in killed or any(
            source in i.failing and i.start * 60 <= at - day_midnight(day) <= i.end * 60
            for i in plan.incidents
        )
        if not allowed:
            problems.append(f"{source} {_clock(at)}: {status} outside any incident")
            continue
        later = [r for r in by_source.get(source, []) if r["at"] > at and r["status"] == "success"]
        if not later:
            problems.append(f"{source} {_clock(at)}: failed and never succeeded after")
    extra = [r for r in rows if r["run_id"] not in claimed]
    if extra:
        problems.append(f"{len(extra)} scheduled runs in no slot")
    counts = Counter(s for s, _ in day.expected)
    summary = ", ".join(f"{s} {counts[s]}" for s in SOURCES if counts[s])
    detail = f"{summary}; {failed} failed and retried" + (
        f"; {'; '.join(problems[:6])}" if problems else ""
    )
    return Check("every slot ran exactly once", not problems, detail)


def day_midnight(day: DayLog) -> float:
    moment = datetime.fromtimestamp(day.day_start, MSK)
    return datetime(moment.year, moment.month, moment.day, tzinfo=MSK).timestamp()


def system_slots(stack: Stack, day: DayLog) -> Check:
    """Every alerts and backup slot was queued and finished."""
    conn = stack.redis()
    counts: Counter[str] = Counter()
    problems = []
    for slot in day.slots:
        if slot.name in SOURCES:
            continue
        stamp = datetime.fromtimestamp(slot.at, UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            status = Job.fetch(f"zakaz-{slot.name}-{stamp}", connection=conn).get_status()
        except Exception:
            status = None
        if status != JobStatus.FINISHED:
            problems.append(f"{slot.name} {_clock(slot.at)}: {status}")
        counts[slot.name] += 1
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return Check("alerts and backup slots finished", not problems, "; ".join([detail, *problems]))


def nothing_running(stack: Stack) -> Check:
    rows = stack.sql(
        "SELECT job, status, count() AS n FROM meta_job_runs "
        "WHERE status IN ('queued', 'running') GROUP BY job, status"
    )
    detail = ", ".join(f"{r['job']} {r['status']} {r['n']}" for r in rows) or "none"
    return Check("no run left queued or running", not rows, detail)


def no_locks(stack: Stack) -> Check:
    keys = sorted(k.decode() for k in stack.redis().scan_iter("zakaz:lock:*"))
    return Check("no lock held in Redis", not keys, ", ".join(keys) or "no lock keys in Redis")


def alerts_once(stack: Stack, day: DayLog, plan: Plan) -> Check:
    """Each incident raised each of its alerts exactly once, and each was resolved; no other alert.

    A SIGKILL puts the killed run's job in RQ's failed registry: the next evaluation raises
    `failed_jobs` on that source and the one after resolves it (when the day still has one).
    """
    rows = stack.sql(
        "SELECT alert_id, job, kind, toUnixTimestamp(created_at) AS at, "
        "resolved_at IS NOT NULL AS resolved FROM alerts FINAL ORDER BY created_at"
    )
    midnight = day_midnight(day)
    evaluations = [s.at for s in day.slots if s.name == "alerts"]
    wanted: list[tuple[str, float, float, str, str]] = []
    for incident in plan.incidents:
        for job, kind in incident.alerts:
            # Raised while it lasts (at a failed run, or at an evaluation); resolved later.
            start, end = midnight + incident.start * 60, midnight + incident.end * 60
            wanted.append((incident.name, start, end, job, kind))
    for at, jobs in day.kills:
        for job in jobs:
            wanted.append(("SIGKILL", at, at + 2 * 3600 + 60, job, "failed_jobs"))
    problems = []
    used: set[str] = set()
    for name, start, end, job, kind in wanted:
        found = [
            r for r in rows if r["job"] == job and r["kind"] == kind and start <= r["at"] <= end
        ]
        used.update(r["alert_id"] for r in found)
        if len(found) != 1:
            problems.append(f"{name}: {len(found)} {job} {kind} alerts")
            continue
        later = [e for e in evaluations if e > found[0]["at"] + 1]
        if not found[0]["resolved"] and (later or kind != "failed_jobs"):
            problems.append(f"{name}: {job} {kind} not resolved")
    # The sandbox's own bad rows (kept at their last good value from the first run on) hold a
    # `held_back` alert open all day: a standing condition, not an incident of the day.
    first = min((at for _, at in day.expected), default=0.0)
    baseline = [
        r
        for r in rows
        if r["alert_id"] not in used and r["kind"] == "held_back" and r["at"] <= first + 60
    ]
    used.update(r["alert_id"] for r in baseline)
    other = [r for r in rows if r["alert_id"] not in used]
    for r in other:
        problems.append(f"unexpected {r['job']} {r['kind']} at {_clock(r['at'])}")
    resolved = sum(bool(r["resolved"]) for r in rows)
    detail = (
        f"{len(wanted)} expected, {len(baseline)} standing, {len(rows)} raised, {resolved} resolved"
    )
    return Check(
        "each incident alerted once and resolved", not problems, "; ".join([detail, *problems[:8]])
    )


#: Open alerts the incident check accounts for at the end of a day: the sandbox's own bad rows
#: (`held_back`, all day) and a SIGKILL's failed job when no alert run came after it.
STANDING_KINDS = frozenset({"held_back", "failed_jobs"})


def status_green(stack: Stack) -> Check:
    found = stack.get("/healthz/detailed")
    states = {s["source"]: s["state"] for s in found["sources"]}
    kinds: dict[str, set[str]] = {}
    for row in stack.sql("SELECT job, kind FROM alerts FINAL WHERE resolved_at IS NULL"):
        kinds.setdefault(str(row["job"]), set()).add(str(row["kind"]))
    standing = {
        s["source"]
        for s in found["sources"]
        if s["state"] == "amber"
        and str(s.get("reason", "")).startswith("open alert")
        and kinds.get(s["source"], set()) <= STANDING_KINDS
    }
    bad = {
        s: st
        for s, st in states.items()
        if st != "green" and not (s == "gmail" and st == "grey") and s not in standing
    }
    detail = (
        ", ".join(
            f"{s} {st}" + (" (standing alert only)" if s in standing else "")
            for s, st in states.items()
        )
        + f"; overall {found['status']}"
    )
    return Check("status page all green", not bad and found["status"] == "ok", detail)


# -- the clean load ----------------------------------------------------------------------------


def _command(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603 - our own argument list
        [*_zakaz(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"zakaz {args[0]} {args[1][:40]} exited {done.returncode}: {done.stderr[-400:]}"
        )
    return done.stdout


def clean_load(stack: Stack) -> tuple[Path, list[str]]:
    """A fresh data dir loaded by `zakaz run` of every source at the same virtual clock."""
    clean = stack.root / "clean"
    env = stack.platform_env(clean, stack.clock_file)
    env["REDIS_URL"] = stack.redis_url.rsplit("/", 1)[0] + "/1"  # its own locks, not the day's
    # The day's warehouse keeps every day its ad loads covered, from the first load's window on:
    # the clean load asks for the same dates (the final upstream state of each).
    spans = {
        source: stack_span(stack.data_dir, env, table)
        for source, table in (("vk_ads", "fact_vk_ads_daily"), ("direct", "fact_direct_daily"))
    }
    failures = []
    for source in SOURCES:
        span = spans.get(source)
        window = ["--since", span[0], "--to", span[1]] if span else []
        try:
            _command(["run", source, *window], env)
        except RuntimeError as exc:
            failures.append(f"{source}: {exc}")
    return clean, failures


def stack_span(data_dir: Path, env: dict[str, str], table: str) -> tuple[str, str] | None:
    """The first and last `stat_date` of an ad fact table of the day's warehouse."""
    day_env = {**env, "ZAKAZ_DATA_DIR": str(data_dir)}
    query = f"SELECT toString(min(stat_date)) AS a, toString(max(stat_date)) AS b FROM {table}"
    rows = json.loads(_command(["sql", "--json", query], day_env))
    return (rows[0]["a"], rows[0]["b"]) if rows else None


def _view(data_dir: Path, stack: Stack, view: str) -> list[str]:
    env = stack.platform_env(data_dir, stack.clock_file)
    env["REDIS_URL"] = stack.redis_url.rsplit("/", 1)[0] + "/1"
    rows = json.loads(_command(["sql", "--json", f"SELECT * FROM {view}"], env))
    dropped = VIEWS[view]
    return sorted(
        json.dumps({k: v for k, v in row.items() if k not in dropped}, sort_keys=True, default=str)
        for row in rows
    )


def views_equal(stack: Stack, clean: Path) -> list[Check]:
    """Every BI view of the day's warehouse equal to the clean load's (`zakaz sql --json`)."""
    jobs = [(view, where) for view in VIEWS for where in (stack.data_dir, clean)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda job: _view(job[1], stack, job[0]), jobs))
    checks = []
    for i, view in enumerate(VIEWS):
        day, fresh = results[2 * i], results[2 * i + 1]
        only_day = sorted(set(day) - set(fresh))
        only_clean = sorted(set(fresh) - set(day))
        ok = not only_day and not only_clean and len(day) == len(fresh)
        detail = (
            f"{len(day)} rows"
            if ok
            else (
                f"{len(day)} vs {len(fresh)} rows; only in the day: {only_day[:2]}; "
                f"only in the clean load: {only_clean[:2]}"
            )
        )
        checks.append(Check(f"{view} = clean load", ok and len(day) > 0, detail[:600]))
    return checks
