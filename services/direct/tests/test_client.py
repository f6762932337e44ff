"""The Direct client against the sandbox over real HTTP: the offline queue, errors, paging."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from direct_support import DirectSandbox
from zakaz_common.errors import AuthError, PermanentError, TransientError
from zakaz_common.timeutil import today_msk
from zakaz_direct.client import MAX_ATTEMPTS
from zakaz_direct.codes import QueueFull
from zakaz_direct.reports import ReportRequest, report_request
from zakaz_sandbox.direct_data import CLIENT_LOGIN, OTHER_LOGIN, TOKEN


def four_days(run_key: str = "run-1") -> ReportRequest:
    yesterday = today_msk() - timedelta(days=1)
    return report_request(
        login=CLIENT_LOGIN,
        since=yesterday - timedelta(days=3),
        to=yesterday,
        include_vat=True,
        run_key=run_key,
    )


def test_an_offline_report_is_polled_with_the_same_body_until_ready(sandbox: DirectSandbox) -> None:
    request = four_days()
    with sandbox.client() as client:
        records = client.report(request)

    seen = sandbox.requests("reports")
    assert [r["status"] for r in seen] == [201, 202, 200]
    assert {r["report_name"] for r in seen} == {request.name}
    assert all(r["money_in_micros"] is False for r in seen)
    assert {(r["processing_mode"], r["accept_language"]) for r in seen} == {("auto", "ru")}
    assert client.stats.report_polls == 2
    yesterday = today_msk() - timedelta(days=1)
    truth = sandbox.truth(yesterday - timedelta(days=3), yesterday)
    assert len(records) == len(truth) > 100
    assert sorted(r["Cost"] for r in records) == sorted(t["cost"] for t in truth)


def test_retry_in_is_honoured_but_never_past_the_cap(sandbox: DirectSandbox) -> None:
    sandbox.control("config", {"retry_in": 1})

    started = time.monotonic()
    with sandbox.client(max_wait=5.0) as client:
        client.report(four_days("honoured"))
    honoured = time.monotonic() - started
    started = time.monotonic()
    with sandbox.client(max_wait=0.1) as client:
        client.report(four_days("capped"))
    capped = time.monotonic() - started

    assert honoured >= 2.0  # two waits of retryIn = 1 s
    assert capped < 1.0


def test_a_full_queue_is_waited_out_then_the_report_is_built(sandbox: DirectSandbox) -> None:
    sandbox.control("queue", {"fill": 5, "drain_after": 2})

    with sandbox.client() as client:
        records = client.report(four_days())

    assert records
    assert client.stats.queue_full == 2
    seen = sandbox.requests("reports")
    assert [r.get("error_code") or r["status"] for r in seen] == [9000, 9000, 201, 202, 200]


def test_a_queue_that_stays_full_ends_in_a_transient_error(sandbox: DirectSandbox) -> None:
    sandbox.control("queue", {"fill": 5, "drain_after": 0})

    with sandbox.client(max_wait=0.05, report_timeout=0.5) as client, pytest.raises(QueueFull):
        client.report(four_days())

    assert 2 <= len(sandbox.requests("reports")) <= 12


def test_a_report_not_ready_in_time_is_transient_and_resumable(sandbox: DirectSandbox) -> None:
    sandbox.control("config", {"offline_polls": 50, "retry_in": 1})
    request = four_days()

    client = sandbox.client(max_wait=0.05, report_timeout=0.3)
    with client, pytest.raises(TransientError, match="still not ready"):
        client.report(request)
    sandbox.control("config", {"offline_polls": 2})

    # The same run asks again with the same body: the sandbox knows the report (202, not 201).
    with sandbox.client(max_wait=0.05, report_timeout=0.3) as client, pytest.raises(TransientError):
        client.report(request)
    statuses = [r["status"] for r in sandbox.requests("reports")]
    assert statuses[0] == 201 and set(statuses[1:]) == {202}


def test_error_53_is_one_request_and_says_to_renew_the_token(sandbox: DirectSandbox) -> None:
    with (
        sandbox.client(token="y0_expired-token-1234567") as client,
        pytest.raises(AuthError) as caught,
    ):
        client.report(four_days())

    message = str(caught.value)
    assert "Direct error 53" in message and "DIRECT_TOKEN" in message
    assert "y0_expired" not in message and TOKEN not in message
    assert len(sandbox.requests()) == 1


@pytest.mark.parametrize(
    ("login", "fault", "code", "fix"),
    [
        pytest.param(OTHER_LOGIN, None, 54, "DIRECT_CLIENT_LOGIN", id="54_not_our_client"),
        pytest.param("neizvestny-login", None, 8800, "DIRECT_CLIENT_LOGIN", id="8800_no_login"),
        pytest.param(CLIENT_LOGIN, 58, 58, "incomplete registration", id="58_app_not_approved"),
        pytest.param(CLIENT_LOGIN, 3000, 3000, "enable the API", id="3000_no_api_access"),
        pytest.param(CLIENT_LOGIN, 4000, 4000, "needs a fix", id="4000_bad_request"),
    ],
)
def test_permanent_errors_are_not_retried_and_name_the_fix(
    sandbox: DirectSandbox, login: str, fault: int | None, code: int, fix: str
) -> None:
    if fault is not None:
        sandbox.control("fault", {"error_code": fault, "times": 5})

    with sandbox.client(login=login) as client, pytest.raises(PermanentError) as caught:
        client.report(four_days())

    assert f"Direct error {code}" in str(caught.value)
    assert fix in str(caught.value)
    assert len(sandbox.requests()) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"error_code": 1000}, id="1000_server"),
        pytest.param({"error_code": 52}, id="52_oauth_busy"),
        pytest.param({"http_status": 503}, id="503_proxy"),
    ],
)
def test_transient_errors_are_retried(sandbox: DirectSandbox, fault: dict[str, int]) -> None:
    sandbox.control("fault", {**fault, "times": 2, "service": "reports"})

    with sandbox.client() as client:
        assert client.report(four_days())

    assert client.stats.retries == 2
    assert [r["status"] for r in sandbox.requests("reports")][2:] == [201, 202, 200]


def test_transient_errors_give_up_after_a_few_attempts(sandbox: DirectSandbox) -> None:
    sandbox.control("fault", {"error_code": 1002, "times": 50})

    with sandbox.client() as client, pytest.raises(TransientError, match="Direct error 1002"):
        client.report(four_days())

    assert len(sandbox.requests()) == MAX_ATTEMPTS


def test_a_502_asks_for_a_shorter_window(sandbox: DirectSandbox) -> None:
    sandbox.control("fault", {"http_status": 502, "times": 50})

    with sandbox.client() as client, pytest.raises(TransientError, match="shorter window"):
        client.report(four_days())


def test_reusing_a_name_with_another_body_is_refused(sandbox: DirectSandbox) -> None:
    request = four_days()
    with sandbox.client() as client:
        client.report(request)
        params = dict(request.body["params"])
        params["IncludeVAT"] = "NO"
        other = ReportRequest(request.name, {"params": params})
        with pytest.raises(PermanentError, match="Direct error 4000"):
            client.report(other)


def test_ads_are_read_page_by_page_with_their_links(sandbox: DirectSandbox) -> None:
    expected = {a["id"]: a["link"] for a in sandbox.ads()}

    with sandbox.client(page_limit=7) as client:
        ads = list(client.ads([*expected, "--", ""]))

    assert {str(a["Id"]) for a in ads} == set(expected)
    offsets = [r["offset"] for r in sandbox.requests("ads")]
    assert offsets == list(range(0, len(expected), 7))
    units = client.stats.units
    assert units.spent == 16 * len(offsets)  # 15 per call + 1 per 2,000 ads started
    assert (units.remaining, units.daily_limit) == (64_000 - units.spent, 64_000)
    kinds = {next(k for k in a if k[0].isupper() and k.endswith("Ad")) for a in ads}
    assert kinds == {"TextAd", "TextImageAd", "CpcVideoAdBuilderAd"}


def test_an_ads_error_at_http_200_is_raised(sandbox: DirectSandbox) -> None:
    sandbox.control("fault", {"error_code": 53, "service": "ads"})

    with sandbox.client() as client, pytest.raises(AuthError, match="DIRECT_TOKEN"):
        list(client.ads(["14702330003"]))
