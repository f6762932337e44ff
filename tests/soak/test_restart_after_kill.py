"""`zakaz up` restarted after a SIGKILL clears its predecessor's RQ workers, so the killed run no
longer blocks the source's next trigger for the heartbeat's 90 s (`up.bury_dead_workers`)."""

from __future__ import annotations

import subprocess

import redis
from rq import Queue, Worker
from zakaz_common.up import bury_dead_workers


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _worker(conn: redis.Redis, name: str, pid: int) -> Worker:
    worker = Worker([Queue("qtickets_api", connection=conn)], connection=conn, name=name)
    worker.register_birth()
    conn.hset(worker.key, "pid", pid)
    return worker


def test_workers_of_a_dead_process_go_and_live_ones_stay(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        dead = _worker(conn, "qtickets_api.dead", _dead_pid())
        live = _worker(conn, "qtickets_api.live", sleeper.pid)
        assert bury_dead_workers(conn) == ["qtickets_api.dead"]
        names = {w.name for w in Worker.all(connection=conn)}
        assert "qtickets_api.live" in names
        assert "qtickets_api.dead" not in names
        assert not conn.exists(dead.key)
        assert conn.exists(live.key)
    finally:
        sleeper.kill()
        sleeper.wait()
