"""Run deadlines: the budget, its override, its bound on requests and retries, and a silent
ClickHouse server failing `zakaz run` in bounded time."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed
from typer.testing import CliRunner
from zakaz_common.cli import app
from zakaz_common.deadline import Deadline, DeadlineExceeded, override_variable
from zakaz_common.errors import ConfigError, TransientError
from zakaz_common.manifest import FINISH_MARGIN, SourceManifest, manifests
from zakaz_common.testing import silent_server

runner = CliRunner()


def test_remaining_counts_down_and_check_raises_once_spent() -> None:
    deadline = Deadline(0.2, "sample run")

    assert 0.0 < deadline.remaining() <= 0.2
    deadline.check("reading")  # budget left: nothing raised
    time.sleep(0.25)

    assert deadline.expired and deadline.remaining() == 0.0
    with pytest.raises(DeadlineExceeded, match=r"sample run stopped at its deadline of 0.2 s"):
        deadline.check("reading the upstream")
    assert DeadlineExceeded("x").transient is True


def test_a_request_timeout_never_exceeds_the_time_left() -> None:
    deadline = Deadline(2.0)

    timeout = deadline.http_timeout(connect=5.0, read=30.0, what="asking")

    assert timeout.connect is not None and timeout.read is not None
    assert timeout.connect <= 2.0 and timeout.read <= 2.0
    assert Deadline.unbounded().http_timeout(connect=5.0, read=30.0, what="x").read == 30.0


def test_the_override_replaces_the_manifest_deadline_within_the_job_timeout(
    sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = override_variable(sample.name)
    assert name == "ZAKAZ_DEADLINE_SAMPLE_SECONDS"
    assert Deadline.for_run(sample).seconds == sample.deadline.total_seconds()

    monkeypatch.setenv(name, "2.5")
    assert Deadline.for_run(sample).seconds == 2.5

    monkeypatch.setenv(name, str(sample.job_timeout.total_seconds()))
    assert Deadline.for_run(sample).seconds == (sample.job_timeout - FINISH_MARGIN).total_seconds()

    for junk in ("soon", "0", "-3", "inf"):
        monkeypatch.setenv(name, junk)
        assert Deadline.for_run(sample).seconds == sample.deadline.total_seconds()


def test_a_manifest_whose_job_timeout_leaves_no_margin_is_refused(sample: SourceManifest) -> None:
    with pytest.raises(ConfigError, match="must exceed the deadline"):
        replace(sample, deadline=timedelta(minutes=29), job_timeout=timedelta(minutes=30))
    with pytest.raises(ConfigError, match="positive"):
        replace(sample, deadline=timedelta(0))


def test_every_installed_source_declares_a_deadline_under_its_job_timeout() -> None:
    found = manifests()
    assert {"qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail"} <= set(found)
    for manifest in found.values():
        assert manifest.deadline + FINISH_MARGIN <= manifest.job_timeout, manifest.name
    # The 15-minute sources end well before the next slot.
    for name in ("qtickets_sheets", "qtickets_api"):
        assert found[name].deadline <= timedelta(minutes=10)
        assert found[name].job_timeout < timedelta(minutes=15)


def test_retries_against_a_silent_server_stop_at_the_deadline() -> None:
    deadline = Deadline(1.5, "sample run")
    attempts: list[float] = []

    def ask(url: str) -> None:
        timeout = deadline.http_timeout(connect=5.0, read=0.4, what="asking")
        attempts.append(time.monotonic())
        try:
            httpx.get(url, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TransientError(f"no answer within {timeout.read:g} s") from exc

    started = time.monotonic()
    with silent_server() as url:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(50) | deadline.stop,
            wait=wait_fixed(0.1),
            retry_error_callback=deadline.give_up("asking the silent server"),
        )
        with pytest.raises(DeadlineExceeded) as caught:
            retrying(ask, url)
    elapsed = time.monotonic() - started

    assert "asking the silent server" in str(caught.value)
    assert "no answer within" in str(caught.value)  # the last failure is named
    assert 2 <= len(attempts) <= 4
    assert all(at - started < 1.5 for at in attempts)  # no attempt began after the deadline
    assert elapsed < 1.5 + 0.5


def test_retries_that_run_out_of_attempts_first_keep_their_own_error() -> None:
    deadline = Deadline(60.0)
    retrying = Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(2) | deadline.stop,
        wait=wait_fixed(0),
        retry_error_callback=deadline.give_up("asking"),
    )

    def fail() -> None:
        raise TransientError("503 from upstream")

    with pytest.raises(TransientError, match="503 from upstream"):
        retrying(fail)


def test_zakaz_run_against_a_silent_clickhouse_fails_in_one_line_in_bounded_time(
    sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CH_CONNECT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("CH_SEND_RECEIVE_TIMEOUT_SECONDS", "1")
    with silent_server() as url:
        monkeypatch.setenv("CH_DSN", url.replace("http://", "http://etl:pw@") + "/zakaz")
        started = time.monotonic()
        result = runner.invoke(app, ["run", "sample"])
        elapsed = time.monotonic() - started

    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "did not answer in time" in lines[0]
    assert "no run can be recorded there" in lines[0]
    assert "pw" not in lines[0].replace("CH_", "")  # the password is redacted
    assert elapsed < 1 + 1 + 5
