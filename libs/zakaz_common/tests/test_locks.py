"""The per-source lock: Redis when it answers (renewed, owned, lost), a mode-600 file lock when not."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from zakaz_common.errors import ConfigError, LockBusy
from zakaz_common.locks import (
    DEFAULT_LOCK_TTL_SECONDS,
    LOCK_TTL_ENV,
    Holder,
    LockLost,
    lock_holder,
    lock_key,
    lock_ttl_seconds,
    source_lock,
)
from zakaz_common.testing import RedisServer


def test_redis_lock_excludes_a_second_run_and_is_released(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    with source_lock("vk_ads", redis_url=redis_url, data_dir=tmp_path) as lease:
        assert lease.where == "redis"
        assert client.exists(lock_key("vk_ads"))
        with (
            pytest.raises(LockBusy, match="already in progress"),
            source_lock("vk_ads", redis_url=redis_url, data_dir=tmp_path),
        ):
            pass
        with source_lock("direct", redis_url=redis_url, data_dir=tmp_path):
            pass  # other sources are independent
    assert not client.exists(lock_key("vk_ads"))


def test_without_redis_the_lock_is_a_private_file(tmp_path: Path) -> None:
    down = "redis://127.0.0.1:9/0"
    with source_lock("gmail", redis_url=down, data_dir=tmp_path) as lease:
        assert lease.where == "file"
        path = tmp_path / "locks" / "gmail.lock"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with (
            pytest.raises(LockBusy, match="file lock"),
            source_lock("gmail", redis_url=down, data_dir=tmp_path),
        ):
            pass
    with source_lock("gmail", redis_url=down, data_dir=tmp_path):
        pass


def test_redis_going_away_falls_back_to_the_file_lock(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    redis_server.stop()
    try:
        with source_lock("direct", redis_url=redis_url, data_dir=tmp_path) as lease:
            assert lease.where == "file"
    finally:
        redis_server.start()
    with source_lock("direct", redis_url=redis_url, data_dir=tmp_path) as lease:
        assert lease.where == "redis"


HOLD = """
import sys
from pathlib import Path

from zakaz_common.locks import source_lock

with source_lock("vk_ads", redis_url=sys.argv[1], data_dir=Path(sys.argv[2]), run_id="r1"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_the_lock_is_renewed_while_held_and_names_its_holder(
    redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    with source_lock("vk_ads", redis_url=redis_url, data_dir=tmp_path, run_id="r1", ttl_seconds=3):
        time.sleep(4.5)  # past the TTL: only the heartbeat keeps the key
        holder = lock_holder(client, "vk_ads")
        assert isinstance(holder, Holder)
        assert (holder.run_id, holder.pid) == ("r1", os.getpid())
        assert 0 < client.pttl(lock_key("vk_ads")) <= 3000
    assert not client.exists(lock_key("vk_ads"))


def test_a_killed_holder_frees_the_source_within_the_ttl(redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, LOCK_TTL_ENV: "3"}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, redis_url, str(tmp_path)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
        with (
            pytest.raises(LockBusy),
            source_lock("vk_ads", redis_url=redis_url, data_dir=tmp_path),
        ):
            pass
        proc.kill()
        proc.wait(10)
        killed = time.monotonic()
        while True:
            try:
                with source_lock("vk_ads", redis_url=redis_url, data_dir=tmp_path) as lease:
                    assert lease.where == "redis"
                    break
            except LockBusy:
                assert time.monotonic() - killed < 3 + 2, "the dead holder's lock outlived its TTL"
                time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_lock_gone_from_redis_is_lost_and_never_taken_back(
    redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    with ExitStack() as first, ExitStack() as second:
        a = first.enter_context(
            source_lock("direct", redis_url=redis_url, data_dir=tmp_path, run_id="a", ttl_seconds=3)
        )
        a.ensure_held()
        client.delete(lock_key("direct"))  # what a Redis restart without persistence does
        b = second.enter_context(
            source_lock("direct", redis_url=redis_url, data_dir=tmp_path, run_id="b")
        )
        with pytest.raises(LockLost, match="lock was lost"):
            a.ensure_held()
        assert a.lost is not None

        first.close()  # `a` lets go: only the token's owner may release, so `b` keeps it

        b.ensure_held()
        holder = lock_holder(client, "direct")
        assert isinstance(holder, Holder) and holder.run_id == "b"
    assert not client.exists(lock_key("direct"))


def test_the_heartbeat_notices_a_lost_lock_by_itself(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    with source_lock(
        "gmail", redis_url=redis_url, data_dir=tmp_path, run_id="a", ttl_seconds=3
    ) as a:
        client.set(lock_key("gmail"), Holder("b", "elsewhere", 1).token())
        deadline = time.monotonic() + 6  # the next beat is due within 1 s
        while a.lost is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "names another run" in a.lost
    assert Holder.parse(client.get(lock_key("gmail")) or b"") == Holder("b", "elsewhere", 1)


@pytest.mark.parametrize(
    ("value", "ttl"),
    [("", DEFAULT_LOCK_TTL_SECONDS), ("5", 5), ("2", None), ("soon", None)],
    ids=["default", "set", "too_short", "not_a_number"],
)
def test_the_lock_ttl_setting(value: str, ttl: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOCK_TTL_ENV, value)
    if ttl is None:
        with pytest.raises(ConfigError, match=LOCK_TTL_ENV):
            lock_ttl_seconds()
    else:
        assert lock_ttl_seconds() == ttl
    # A dead holder must free its source well within the two minutes the operators expect.
    assert DEFAULT_LOCK_TTL_SECONDS <= 90


def test_a_dead_holder_of_this_host_is_freed_at_once(redis_url: str, tmp_path: Path) -> None:
    # The lock a SIGKILLed process left: its TTL is long, its pid gone. The next run takes it.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(10)
    client = redis.Redis.from_url(redis_url)
    dead = Holder("run-killed", socket.gethostname(), gone.pid)
    client.set(lock_key("direct"), dead.token(), ex=600)
    with source_lock("direct", redis_url=redis_url, data_dir=tmp_path, run_id="next") as lease:
        assert lease.where == "redis"
        assert lock_holder(client, "direct") == Holder.me("next")
    assert lock_holder(client, "direct") is None


def test_a_holder_of_another_host_or_alive_is_left_to_its_ttl(
    redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    for other in (
        Holder("run-elsewhere", "another-container", 4242),
        Holder("run-alive", socket.gethostname(), os.getppid()),
    ):
        client.set(lock_key("direct"), other.token(), ex=600)
        with (
            pytest.raises(LockBusy),
            source_lock("direct", redis_url=redis_url, data_dir=tmp_path),
        ):
            pass
        assert lock_holder(client, "direct") == other
    client.delete(lock_key("direct"))
