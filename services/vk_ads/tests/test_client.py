"""The client against the VK sandbox over real HTTP: paging, batches, retries, limits, tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from vk_support import api_requests, control, seen
from zakaz_common.errors import AuthError, PermanentError, TransientError
from zakaz_common.testing import free_port
from zakaz_common.timeutil import today_msk
from zakaz_sandbox.vk import MAX_LIVE_TOKENS
from zakaz_sandbox.vk_data import ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET
from zakaz_vk_ads.client import VkAdsClient, VkOAuth
from zakaz_vk_ads.tokens import FileTokenCache, ManagedToken, StaticToken
from zakaz_vk_ads.transport import ClientOptions, QuotaExhausted, VkHttp


@pytest.fixture
def http(vk_sandbox: str) -> Iterator[VkHttp]:
    """A connection pool to the sandbox with fast retries."""
    with VkHttp(vk_sandbox, ClientOptions(retry_wait_seconds=0.01, max_attempts=4)) as pool:
        yield pool


def _managed(http: VkHttp, tmp_path: Path, secret: str = ADVERTISER_CLIENT_SECRET) -> ManagedToken:
    oauth = VkOAuth(http, ADVERTISER_CLIENT_ID, secret)
    return ManagedToken(FileTokenCache(tmp_path, "test"), oauth)


@pytest.fixture
def client(http: VkHttp, tmp_path: Path) -> VkAdsClient:
    """The advertiser's account, its token managed in a file cache."""
    return VkAdsClient(http, _managed(http, tmp_path))


def _token(base: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": ADVERTISER_CLIENT_ID,
        "client_secret": ADVERTISER_CLIENT_SECRET,
    }
    response = httpx.post(f"{base}/api/v2/oauth2/token.json", data=form, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_banners_are_paged_50_at_a_time_deleted_ones_included(
    client: VkAdsClient, vk_sandbox: str
) -> None:
    banners = list(client.banners())

    assert len(banners) == 229
    assert len({b["id"] for b in banners}) == 229
    assert any(b["status"] == "deleted" for b in banners)
    pages = api_requests(vk_sandbox, "/banners.json")
    assert [(p["params"]["offset"], p["params"]["limit"]) for p in pages] == [
        ("0", "50"),
        ("50", "50"),
        ("100", "50"),
        ("150", "50"),
        ("200", "50"),
    ]


def test_objects_by_id_are_asked_50_ids_at_a_time(client: VkAdsClient, vk_sandbox: str) -> None:
    group_ids = [str(146_700_001 + i) for i in range(58)]

    groups = list(client.ad_groups(group_ids + group_ids[:5]))

    assert sorted(g["id"] for g in groups) == [int(i) for i in group_ids]
    asked = [
        len(r["params"]["_id__in"].split(",")) for r in api_requests(vk_sandbox, "/ad_groups.json")
    ]
    assert asked == [50, 8]
    assert {"utm", "enable_utm", "ad_plan_id"} <= set(groups[0])


def test_the_sandbox_refuses_a_page_over_50_as_vk_does(
    client: VkAdsClient, vk_sandbox: str
) -> None:
    token = _token(vk_sandbox)
    response = httpx.get(
        f"{vk_sandbox}/api/v2/banners.json",
        params={"limit": "51"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["limit"]["code"] == "max_value"
    with pytest.raises(PermanentError, match="validation_failed"):
        client.get("banners", "/api/v2/banners.json", {"limit": "250"})


def test_statistics_are_asked_for_at_most_200_banners_at_once(
    client: VkAdsClient, vk_sandbox: str
) -> None:
    ids = [str(b["id"]) for b in client.banners()]
    yesterday = today_msk() - timedelta(days=1)

    items = list(client.banner_days(ids, yesterday, yesterday))

    assert sorted(str(i["id"]) for i in items) == sorted(ids)
    assert all(len(i["rows"]) == 1 for i in items)
    batches = [r["params"]["id"].split(",") for r in api_requests(vk_sandbox, "/day.json")]
    assert [len(b) for b in batches] == [200, 29]
    token = _token(vk_sandbox)
    too_many = httpx.get(
        f"{vk_sandbox}/api/v2/statistics/banners/day.json",
        params={"id": ",".join(ids[:201]), "date_from": yesterday.isoformat()},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert too_many.status_code == 400
    assert too_many.json() == {
        "error": {"code": "ERR_LIMIT_EXCEEDED", "message": "Too many ids: at most 200 objects"}
    }


def test_long_windows_are_split_into_92_day_requests(client: VkAdsClient, vk_sandbox: str) -> None:
    to = today_msk() - timedelta(days=1)
    since = to - timedelta(days=99)

    items = list(client.banner_days(["228500001"], since, to))

    windows = [
        (date.fromisoformat(r["params"]["date_from"]), date.fromisoformat(r["params"]["date_to"]))
        for r in api_requests(vk_sandbox, "/day.json")
    ]
    assert windows == [(since, since + timedelta(days=91)), (since + timedelta(days=92), to)]
    assert sum(len(i["rows"]) for i in items) == 100


def test_a_foreign_banner_id_fails_the_request_as_a_permanent_error(
    client: VkAdsClient,
) -> None:
    day = today_msk()
    with pytest.raises(PermanentError, match="ERR_WRONG_BANNERS"):
        list(client.banner_days(["1"], day, day))


def test_429_is_retried_with_backoff(client: VkAdsClient, http: VkHttp, vk_sandbox: str) -> None:
    list(client.ad_plans(["9120001"]))
    control(vk_sandbox, "throttle", {"count": 2})

    plans = list(client.ad_plans(["9120002"]))

    assert [p["id"] for p in plans] == [9120002]
    statuses = [r["status"] for r in api_requests(vk_sandbox, "/ad_plans.json")]
    assert statuses == [200, 429, 429, 200]
    assert http.counts["retries"] == 2


def test_a_retry_after_header_is_honoured_over_the_backoff(
    client: VkAdsClient, vk_sandbox: str
) -> None:
    list(client.ad_plans(["9120001"]))
    control(vk_sandbox, "throttle", {"count": 1, "retry_after": 1})
    started = time.monotonic()

    assert [p["id"] for p in client.ad_plans(["9120001"])] == [9120001]

    assert time.monotonic() - started >= 0.95


def test_429_carries_the_rate_limit_headers(vk_sandbox: str) -> None:
    token = _token(vk_sandbox)
    control(vk_sandbox, "throttle", {"count": 1})

    response = httpx.get(
        f"{vk_sandbox}/api/v2/ad_plans.json", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 429
    assert response.headers["X-RateLimit-RPS-Remaining"] == "0"
    for name in ("RPS", "Hourly", "Daily"):
        assert int(response.headers[f"X-RateLimit-{name}-Limit"]) > 0


def test_5xx_is_retried_and_a_storm_fails_as_transient(
    client: VkAdsClient, vk_sandbox: str
) -> None:
    control(vk_sandbox, "fail", {"count": 1, "status": 503})
    assert [p["id"] for p in client.ad_plans(["9120001"])] == [9120001]

    control(vk_sandbox, "fail", {"count": 10, "status": 500})
    with pytest.raises(TransientError, match="500"):
        list(client.ad_plans(["9120001"]))
    assert len(api_requests(vk_sandbox, "/ad_plans.json")) == 2 + 4


def test_an_exhausted_hourly_quota_fails_at_once_for_a_later_retry(
    client: VkAdsClient, http: VkHttp, vk_sandbox: str
) -> None:
    control(vk_sandbox, "limits", {"hourly": 2})

    with pytest.raises(QuotaExhausted, match="Hourly"):
        list(client.banners())

    assert [r["status"] for r in api_requests(vk_sandbox, "/banners.json")] == [200, 200, 429]
    assert http.counts["retries"] == 0


def test_the_per_second_limit_is_respected_without_drawing_429(
    client: VkAdsClient, http: VkHttp, vk_sandbox: str
) -> None:
    control(vk_sandbox, "limits", {"rps": 2})
    started = time.monotonic()

    assert len(list(client.banners())) == 229

    assert all(r["status"] == 200 for r in api_requests(vk_sandbox, "/banners.json"))
    assert http.counts["rate_pauses"] >= 2
    assert time.monotonic() - started < 5


def test_an_unreachable_host_is_transient(tmp_path: Path) -> None:
    with VkHttp(f"http://127.0.0.1:{free_port()}", ClientOptions(0.01, 2)) as http:
        client = VkAdsClient(http, StaticToken("x"))
        with pytest.raises(TransientError, match="could not be reached"):
            client.get("ad_plans", "/api/v2/ad_plans.json", {})
        assert http.counts["ad_plans"] == 2


def test_an_expired_token_is_refreshed_once_and_the_request_retried(
    client: VkAdsClient, http: VkHttp, vk_sandbox: str
) -> None:
    list(client.ad_plans(["9120001"]))
    control(vk_sandbox, "tokens/expire")

    assert [p["id"] for p in client.ad_plans(["9120001"])] == [9120001]

    state = seen(vk_sandbox)
    assert state["token_requests"] == {"client_credentials": 1, "refresh_token": 1}
    assert state["live_tokens"] == {ADVERTISER_CLIENT_ID: 1}
    assert [r["status"] for r in api_requests(vk_sandbox, "/ad_plans.json")] == [200, 401, 200]
    assert http.counts["renewals"] == 1


def test_an_invalid_token_is_replaced_by_a_new_one(client: VkAdsClient, vk_sandbox: str) -> None:
    list(client.ad_plans(["9120001"]))
    control(vk_sandbox, "tokens/invalidate")

    assert [p["id"] for p in client.ad_plans(["9120001"])] == [9120001]

    assert seen(vk_sandbox)["token_requests"] == {"client_credentials": 2}


def test_the_sixth_token_is_refused_then_old_tokens_are_deleted_once(
    http: VkHttp, tmp_path: Path, vk_sandbox: str
) -> None:
    for _ in range(MAX_LIVE_TOKENS):
        _token(vk_sandbox)
    form = {
        "grant_type": "client_credentials",
        "client_id": ADVERTISER_CLIENT_ID,
        "client_secret": ADVERTISER_CLIENT_SECRET,
    }
    sixth = httpx.post(f"{vk_sandbox}/api/v2/oauth2/token.json", data=form)
    assert sixth.status_code == 403
    assert sixth.json()["error"] == "access_denied"

    client = VkAdsClient(http, _managed(http, tmp_path))
    assert [p["id"] for p in client.ad_plans(["9120001"])] == [9120001]

    assert seen(vk_sandbox)["live_tokens"] == {ADVERTISER_CLIENT_ID: 1}


def test_a_wrong_secret_is_an_auth_error_naming_the_settings(http: VkHttp, tmp_path: Path) -> None:
    client = VkAdsClient(http, _managed(http, tmp_path, secret="wrong-secret-value"))

    with pytest.raises(AuthError) as caught:
        list(client.ad_plans(["9120001"]))

    assert "VK_CLIENT_SECRET" in str(caught.value) and "invalid_client" in str(caught.value)
    assert "wrong-secret-value" not in str(caught.value)


def test_a_refused_pre_issued_token_is_an_auth_error_naming_vk_token(http: VkHttp) -> None:
    client = VkAdsClient(http, StaticToken("not-a-token"))

    with pytest.raises(AuthError, match="VK_TOKEN"):
        list(client.ad_plans(["9120001"]))
