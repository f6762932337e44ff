"""Token reuse across runs and workers: Redis when it answers, a mode-600 file when it does not."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from vk_support import control, run, seen
from zakaz_common.clickhouse import Warehouse
from zakaz_common.testing import RedisServer
from zakaz_sandbox.vk_data import ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET
from zakaz_vk_ads.client import VkOAuth
from zakaz_vk_ads.tokens import (
    FileTokenCache,
    ManagedToken,
    RedisTokenCache,
    Token,
    cache_key,
    open_token_cache,
)
from zakaz_vk_ads.transport import ClientOptions, VkHttp


def test_ten_runs_request_one_token_cached_in_redis(
    wh: Warehouse, vk_env: str, redis_url: str
) -> None:
    summaries = [run(wh) for _ in range(10)]

    assert [s.status for s in summaries] == ["success"] * 10
    assert {s.counts["token_cache"] for s in summaries} == {"redis"}
    assert seen(vk_env)["token_requests"] == {"client_credentials": 1}
    assert sum(s.counts.get("requests_token", 0) for s in summaries) == 1


def test_ten_runs_without_redis_request_one_token_cached_in_a_private_file(
    wh: Warehouse, vk_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A data dir of the test's own (the warehouse is already open), to find the cache file.
    monkeypatch.setenv("ZAKAZ_DATA_DIR", str(tmp_path / "data"))

    summaries = [run(wh) for _ in range(10)]

    assert [s.status for s in summaries] == ["success"] * 10
    assert {s.counts["token_cache"] for s in summaries} == {"file"}
    assert seen(vk_env)["token_requests"] == {"client_credentials": 1}
    files = list((tmp_path / "data" / "vk_tokens").glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700


def test_an_expired_token_is_refreshed_once_between_runs(
    wh: Warehouse, vk_env: str, redis_url: str
) -> None:
    assert run(wh).status == "success"
    control(vk_env, "tokens/expire")

    second, third = run(wh), run(wh)

    assert (second.status, third.status) == ("success", "success")
    assert second.counts["requests_renewals"] == 1
    assert "requests_renewals" not in third.counts
    state = seen(vk_env)
    assert state["token_requests"] == {"client_credentials": 1, "refresh_token": 1}
    assert state["live_tokens"] == {ADVERTISER_CLIENT_ID: 1}


def test_workers_renewing_at_once_obtain_one_token_under_the_lock(
    vk_sandbox: str, redis_url: str, tmp_path: Path
) -> None:
    key = cache_key(vk_sandbox, ADVERTISER_CLIENT_ID, "")
    results: list[str] = []

    def worker() -> None:
        with VkHttp(vk_sandbox, ClientOptions(0.01, 3)) as http:
            cache = open_token_cache(redis_url, tmp_path, key)
            assert isinstance(cache, RedisTokenCache)
            oauth = VkOAuth(http, ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET)
            results.append(ManagedToken(cache, oauth).token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert len(results) == 8 and len(set(results)) == 1
    assert seen(vk_sandbox)["token_requests"] == {"client_credentials": 1}


def test_redis_going_away_falls_back_to_the_file_cache(
    vk_sandbox: str, redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    key = cache_key(vk_sandbox, ADVERTISER_CLIENT_ID, "")
    assert isinstance(open_token_cache(redis_url, tmp_path, key), RedisTokenCache)
    redis_server.stop()
    try:
        cache = open_token_cache(redis_url, tmp_path, key)
    finally:
        redis_server.start()

    assert isinstance(cache, FileTokenCache)
    assert cache.path.parent == tmp_path / "vk_tokens"


def test_a_token_near_its_expiry_is_refreshed_before_use(vk_sandbox: str, tmp_path: Path) -> None:
    clock = [1_000_000.0]
    cache = FileTokenCache(tmp_path, "near-expiry")
    with VkHttp(vk_sandbox, ClientOptions(0.01, 3)) as http:
        oauth = VkOAuth(
            http, ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET, clock=lambda: clock[0]
        )
        tokens = ManagedToken(cache, oauth, clock=lambda: clock[0])
        first = tokens.token()
        clock[0] += 86400 - 300  # five minutes before expiry: inside the safety margin
        second = tokens.token()

    assert first != second
    assert seen(vk_sandbox)["token_requests"] == {"client_credentials": 1, "refresh_token": 1}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="not_json"),
        pytest.param(b'{"access_token": "a"}', id="missing_fields"),
    ],
)
def test_a_damaged_cache_file_counts_as_empty(tmp_path: Path, content: bytes) -> None:
    cache = FileTokenCache(tmp_path, "damaged")
    cache.put(Token("a", "r", 1.0))
    cache.path.write_bytes(content)

    assert cache.get() is None


def test_a_token_never_shows_in_its_repr() -> None:
    assert "secret-access" not in repr(Token("secret-access", "secret-refresh", 5.0))
