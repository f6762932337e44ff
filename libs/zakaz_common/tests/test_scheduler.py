"""The scheduler: Moscow-time slots on a UTC clock, one run per slot, restarts and flags.

Every test passes the clock (`now`) explicitly and runs against a real redis-server and the
embedded warehouse; the sources are the sample source under the contract's names and schedules.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq_scheduler import Scheduler  # type: ignore[import-untyped]
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import ConfigError
from zakaz_common.jobs import RUN_JOB, enqueue_run
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import RunRequest, latest_runs
from zakaz_common.scheduler import (
    ALERTS,
    ALERTS_JOB,
    ALERTS_QUEUE,
    ALERTS_SCHEDULE,
    BACKUP,
    BACKUP_JOB,
    SCHEDULE_ID_PREFIX,
    SYSTEM_JOBS,
    Fired,
    SchedulerLoop,
    fire,
    fire_slot,
    fire_times,
    is_enabled,
    next_fire_times,
    register_schedules,
    schedule_id,
    scheduled_slots,
    set_enabled,
    tick,
)

MSK = "Europe/Moscow"

#: 20:59:59 UTC = 23:59:59 MSK, one second before the VK slot.
T0 = datetime(2025, 1, 1, 20, 59, 59, tzinfo=UTC)

SCHEDULES = {
    "qtickets_sheets": "*/15 * * * *",
    "qtickets_api": "*/15 * * * *",
    "vk_ads": "0 0 * * *",
    "direct": "10 0 * * *",
    "gmail": "0 */4 * * *",
}


def utc(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> datetime:
    """A moment of January 2025 in UTC."""
    return datetime(2025, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def sources() -> dict[str, SourceManifest]:
    """The contract's five sources (schedules and gmail's default-off), loading the sample source."""
    import sample_source

    return {
        name: replace(
            sample_source.MANIFEST, name=name, schedule=cron, enabled_by_default=name != "gmail"
        )
        for name, cron in SCHEDULES.items()
    }


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test's empty Redis."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def queued(conn: redis.Redis, name: str) -> list[Job]:
    """The jobs waiting in a queue."""
    return Queue(name, connection=conn).get_jobs()


def outcomes(fired: list[Fired]) -> dict[str, str]:
    """Fired slots as name -> outcome."""
    return {f.name: f.outcome for f in fired}


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        pytest.param("0 0 * * *", T0, [utc(21), utc(21, day=2)], id="vk_midnight_msk"),
        pytest.param("10 0 * * *", T0, [utc(21, 10), utc(21, 10, day=2)], id="direct_0010_msk"),
        pytest.param(
            "*/15 * * * *", T0, [utc(21), utc(21, 15), utc(21, 30), utc(21, 45)], id="quarter"
        ),
        pytest.param("*/15 * * * *", utc(21), [utc(21, 15)], id="slot_itself_excluded"),
        pytest.param("0 */4 * * *", T0, [utc(21), utc(1, day=2)], id="gmail_every_4h_msk"),
        pytest.param(ALERTS_SCHEDULE, T0, [utc(21), utc(23)], id="alerts_every_2h"),
        pytest.param("0 0 * * *", T0.replace(tzinfo=None), [utc(21)], id="naive_means_utc"),
    ],
)
def test_fire_times_are_business_time_slots_as_utc(
    cron: str, after: datetime, expected: list[datetime]
) -> None:
    got = fire_times(cron, after, MSK, len(expected))
    assert got == expected
    assert all(t.tzinfo is UTC for t in got)


def test_next_fire_times_reads_the_manifest_schedule(sources: dict[str, SourceManifest]) -> None:
    assert next_fire_times(sources["vk_ads"], T0, MSK) == [utc(21)]
    assert next_fire_times(sources["vk_ads"], T0, "UTC") == [utc(0, day=2)]
    with pytest.raises(ConfigError, match="not a valid cron"):
        fire_times("every day", T0, MSK)


def test_vk_ads_is_due_at_2100_utc_not_a_second_before(
    conn: redis.Redis, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    register_schedules(conn, sources, MSK, now=T0)
    slots = scheduled_slots(conn)
    assert slots["vk_ads"] == utc(21)
    assert slots["direct"] == utc(21, 10)
    assert slots["qtickets_api"] == slots["qtickets_sheets"] == utc(21)

    assert tick(conn, wh=wh, now=T0, manifests=sources) == []
    assert queued(conn, "vk_ads") == []

    fired = tick(conn, wh=wh, now=utc(21), manifests=sources)

    assert outcomes(fired) == {
        "qtickets_sheets": "queued",
        "qtickets_api": "queued",
        "vk_ads": "queued",
        "gmail": "skipped_disabled",
        ALERTS: "queued",
    }
    vk = next(f for f in fired if f.name == "vk_ads")
    assert vk.slot == utc(21)
    [job] = queued(conn, "vk_ads")
    assert (job.id, job.func_name) == (vk.job_id, RUN_JOB)
    [run] = latest_runs(wh, "vk_ads")
    assert (run["run_id"], run["status"]) == (vk.job_id, "queued")
    assert scheduled_slots(conn)["vk_ads"] == utc(21, day=2)


def test_a_simulated_hour_fires_each_source_at_its_moscow_times(
    conn: redis.Redis, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    register_schedules(conn, sources, MSK, now=T0)
    seen: dict[str, list[datetime]] = {}
    now = T0
    while now <= utc(22, 0, 30):
        for f in tick(conn, wh=wh, now=now, manifests=sources):
            seen.setdefault(f.name, []).append(f.slot)
        now += timedelta(seconds=30)

    quarters = [utc(21), utc(21, 15), utc(21, 30), utc(21, 45), utc(22)]
    assert seen == {
        "qtickets_sheets": quarters,
        "qtickets_api": quarters,
        "vk_ads": [utc(21)],
        "direct": [utc(21, 10)],
        "gmail": [utc(21)],
        ALERTS: [utc(21)],
    }
    # The first quarter's runs are still queued (no worker here): later quarters skip politely.
    assert len(queued(conn, "qtickets_api")) == 1
    assert [r["status"] for r in latest_runs(wh, "qtickets_api")] == ["queued"]


def test_two_scheduler_loops_enqueue_the_vk_slot_once(
    redis_url: str, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    vk = {"vk_ads": sources["vk_ads"]}
    conns = [redis.Redis.from_url(redis_url) for _ in range(2)]
    loops = [
        SchedulerLoop(c, wh=wh, manifests=vk, tz=MSK, name=f"test-{i}") for i, c in enumerate(conns)
    ]
    for loop in loops:
        loop.run_once(now=T0)
    fired = [f for loop in loops for f in loop.run_once(now=utc(21))]

    assert [f.outcome for f in fired if f.name == "vk_ads"] == ["queued"]
    assert len(queued(conns[0], "vk_ads")) == 1
    assert [r["status"] for r in latest_runs(wh, "vk_ads")] == ["queued"]
    assert conns[0].get(Scheduler.scheduler_lock_key) is None


def test_concurrent_ticks_on_one_due_slot_enqueue_it_once(
    redis_url: str, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    vk = {"vk_ads": sources["vk_ads"]}
    register_schedules(redis.Redis.from_url(redis_url), vk, MSK, now=T0)
    barrier = threading.Barrier(4)
    results: list[Fired] = []

    def instance() -> None:
        conn = redis.Redis.from_url(redis_url)
        barrier.wait()
        results.extend(tick(conn, wh=wh, now=utc(21), manifests=vk))

    threads = [threading.Thread(target=instance) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    conn = redis.Redis.from_url(redis_url)
    vk_outcomes = sorted(f.outcome for f in results if f.name == "vk_ads")
    assert [o for o in vk_outcomes if o != "duplicate"] == ["queued"]
    assert len(queued(conn, "vk_ads")) == 1
    assert len(latest_runs(wh, "vk_ads")) == 1


def test_firing_a_claimed_slot_again_is_a_duplicate(
    conn: redis.Redis, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    first = fire(conn, "vk_ads", utc(21), wh=wh, manifests=sources)
    again = fire(conn, "vk_ads", utc(21), wh=wh, manifests=sources)

    assert (first.outcome, again.outcome) == ("queued", "duplicate")
    assert len(queued(conn, "vk_ads")) == 1


def test_registering_twice_keeps_one_entry_per_schedule_and_its_armed_slot(
    conn: redis.Redis, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    ids = register_schedules(conn, sources, MSK, now=T0)
    # A restart half an hour later: the 21:00 slot was missed and must still fire once.
    again = register_schedules(conn, sources, MSK, now=utc(21, 30))

    assert ids == again == [schedule_id(n) for n in [*SCHEDULES, *SYSTEM_JOBS]]
    members = [m.decode() for m in conn.zrange(Scheduler.scheduled_jobs_key, 0, -1)]
    assert sorted(members) == sorted(ids)
    assert scheduled_slots(conn)["vk_ads"] == utc(21)
    fired = tick(conn, wh=wh, now=utc(21, 30), manifests=sources)
    assert outcomes(fired)["vk_ads"] == "queued"
    assert scheduled_slots(conn)["qtickets_api"] == utc(21, 45)


def test_a_changed_schedule_rearms_and_an_uninstalled_source_is_dropped(
    conn: redis.Redis, sources: dict[str, SourceManifest]
) -> None:
    register_schedules(conn, sources, MSK, now=T0)
    changed = {"vk_ads": replace(sources["vk_ads"], schedule="30 1 * * *")}

    register_schedules(conn, changed, MSK, now=T0, include_alerts=False)

    assert scheduled_slots(conn) == {"vk_ads": utc(22, 30)}
    assert not conn.exists(Job.key_for(schedule_id("direct")))
    assert Job.fetch(schedule_id("vk_ads"), connection=conn).meta["cron"] == "30 1 * * *"


def test_a_disabled_source_enqueues_nothing_until_enabled(
    conn: redis.Redis, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    gmail = {"gmail": sources["gmail"]}
    register_schedules(conn, gmail, MSK, now=T0, include_alerts=False)
    assert not is_enabled(conn, "gmail", sources["gmail"])

    assert outcomes(tick(conn, wh=wh, now=utc(21), manifests=gmail)) == {
        "gmail": "skipped_disabled"
    }
    assert queued(conn, "gmail") == []
    assert latest_runs(wh, "gmail") == []

    set_enabled(conn, "gmail", True)
    assert is_enabled(conn, "gmail", sources["gmail"])
    fired = tick(conn, wh=wh, now=utc(1, day=2), manifests=gmail)

    assert [(f.outcome, f.slot) for f in fired] == [("queued", utc(1, day=2))]
    assert len(queued(conn, "gmail")) == 1


def test_the_flag_overrides_an_enabled_default(
    conn: redis.Redis, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    assert is_enabled(conn, "vk_ads", sources["vk_ads"])
    set_enabled(conn, "vk_ads", False)
    assert not is_enabled(conn, "vk_ads", sources["vk_ads"])
    assert fire(conn, "vk_ads", utc(21), wh=wh, manifests=sources).outcome == "skipped_disabled"
    assert queued(conn, "vk_ads") == []


def test_a_slot_whose_previous_run_is_still_queued_is_skipped(
    conn: redis.Redis, wh: Warehouse, sources: dict[str, SourceManifest]
) -> None:
    vk = {"vk_ads": sources["vk_ads"]}
    earlier = enqueue_run(conn, sources["vk_ads"], RunRequest(), wh=wh, trigger="api")
    register_schedules(conn, vk, MSK, now=T0, include_alerts=False)

    fired = tick(conn, wh=wh, now=utc(21), manifests=vk)

    assert [(f.outcome, f.job_id) for f in fired] == [("skipped_running", earlier)]
    assert [j.id for j in queued(conn, "vk_ads")] == [earlier]
    assert [r["run_id"] for r in latest_runs(wh, "vk_ads")] == [earlier]
    assert scheduled_slots(conn)["vk_ads"] == utc(21, day=2)


def test_alerts_are_queued_by_path_on_the_health_queue(
    conn: redis.Redis, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other test modules import the health package; forget it so the check below means something.
    for name in [m for m in sys.modules if m == "zakaz_health" or m.startswith("zakaz_health.")]:
        monkeypatch.delitem(sys.modules, name)
    register_schedules(conn, {}, MSK, now=T0)

    fired = tick(conn, wh=wh, now=utc(21), manifests={})

    assert outcomes(fired) == {ALERTS: "queued"}
    [job] = queued(conn, ALERTS_QUEUE)
    assert job.func_name == ALERTS_JOB
    assert "zakaz_health.alerting" not in sys.modules


def test_fire_slot_is_the_rq_callable_of_an_entry(conn: redis.Redis) -> None:
    entry = Job.fetch(register_schedules(conn, {}, MSK, now=T0)[0], connection=conn)
    assert (entry.func_name, entry.args) == ("zakaz_common.scheduler.fire_slot", [ALERTS])

    assert fire_slot(ALERTS, utc(21).isoformat()) == "queued"
    assert fire_slot(ALERTS, utc(21).isoformat()) == "duplicate"
    assert len(queued(conn, ALERTS_QUEUE)) == 1


def test_the_loop_stops_cleanly_and_registers_its_death(conn: redis.Redis, wh: Warehouse) -> None:
    loop = SchedulerLoop(conn, wh=wh, manifests={}, tz=MSK, interval_seconds=0.05)
    thread = threading.Thread(target=loop.run)
    thread.start()
    deadline = time.monotonic() + 10
    while schedule_id(ALERTS) not in scheduled_ids(conn) and time.monotonic() < deadline:
        time.sleep(0.02)

    loop.stop()
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert conn.hexists(loop.scheduler.key, "death")
    assert conn.get(Scheduler.scheduler_lock_key) is None


def scheduled_ids(conn: redis.Redis) -> list[str]:
    """Ids of the registered schedule entries."""
    members = [m.decode() for m in conn.zrange(Scheduler.scheduled_jobs_key, 0, -1)]
    return [m for m in members if m.startswith(SCHEDULE_ID_PREFIX)]


def test_serve_scheduler_registers_and_exits_on_sigterm(
    conn: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "ZAKAZ_DATA_DIR": str(tmp_path)}
    code = (
        "from zakaz_common.scheduler import serve_scheduler; serve_scheduler(interval_seconds=0.2)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        wanted = {schedule_id(name) for name in SYSTEM_JOBS}
        while not wanted <= set(scheduled_ids(conn)) and time.monotonic() < deadline:
            assert proc.poll() is None, "the scheduler exited early"
            time.sleep(0.1)
        assert wanted <= set(scheduled_ids(conn))

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    instances = conn.keys(f"{Scheduler.redis_scheduler_namespace_prefix}*")
    assert instances
    assert all(conn.hexists(key, "death") for key in instances)


def test_the_daily_backup_is_queued_by_path_at_03_30_moscow(
    conn: redis.Redis, wh: Warehouse
) -> None:
    register_schedules(conn, {}, MSK, now=T0)

    fired = tick(conn, wh=wh, now=datetime(2025, 6, 2, 0, 30, tzinfo=UTC), manifests={})

    assert outcomes(fired).get(BACKUP) == "queued"
    [job] = [j for j in queued(conn, ALERTS_QUEUE) if j.func_name == BACKUP_JOB]
    assert job.id.startswith("zakaz-backup-")


def test_one_enabled_rule_for_sources_system_jobs_and_strangers(
    conn: redis.Redis, sources: dict[str, SourceManifest]
) -> None:
    # Without Redis the defaults stand: the manifest's, on for a system job, off for a stranger.
    assert is_enabled(None, "vk_ads", sources["vk_ads"])
    assert not is_enabled(None, "gmail", sources["gmail"])
    assert is_enabled(None, "alerts", None)
    assert not is_enabled(None, "not_installed", None)
    assert not is_enabled(conn, "not_installed", None)
    set_enabled(conn, "alerts", False)
    assert not is_enabled(conn, "alerts", None)
    set_enabled(conn, "not_installed", True)
    assert is_enabled(conn, "not_installed", None)
