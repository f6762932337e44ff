"""The per-source lock: Redis when it answers, a mode-600 file lock when it does not."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import redis
from zakaz_common.errors import LockBusy
from zakaz_common.locks import lock_key, source_lock
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
