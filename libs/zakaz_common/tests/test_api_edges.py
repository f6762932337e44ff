"""The control API's edges: bodies over the cap (413) and date windows out of bounds (422)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from zakaz_common.api.limits import MAX_BODY_BYTES
from zakaz_common.cli import app as cli
from zakaz_common.clickhouse import Warehouse
from zakaz_common.jobs import queue_for
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import MAX_DAYS_AHEAD, MAX_WINDOW_DAYS
from zakaz_common.service import create_app
from zakaz_common.testing import serving
from zakaz_common.timeutil import today_msk

TOKEN = "edge-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def conn(
    wh: Warehouse, redis_url: str, sample: SourceManifest, monkeypatch: pytest.MonkeyPatch
) -> redis.Redis:
    """Redis for the test, and the API token the app expects."""
    monkeypatch.setenv("CH_DATABASE", wh.database)
    monkeypatch.setenv("ZAKAZ_API_TOKEN", TOKEN)
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def client(conn: redis.Redis, wh: Warehouse, redis_url: str, sample: SourceManifest) -> TestClient:
    """The sample source's control API."""
    return TestClient(create_app(sample, redis_url=redis_url, warehouse=wh))


@pytest.fixture
def served(
    conn: redis.Redis, wh: Warehouse, redis_url: str, sample: SourceManifest
) -> Iterator[str]:
    """The sample source's control API over real HTTP (uvicorn on loopback)."""
    with serving(create_app(sample, redis_url=redis_url, warehouse=wh)) as url:
        yield url


def _nothing_queued(conn: redis.Redis, wh: Warehouse) -> bool:
    return (
        queue_for(conn, "sample").count == 0 and wh.scalar("SELECT count() FROM meta_job_runs") == 0
    )


def test_a_body_declared_over_the_cap_is_413_before_it_is_parsed(
    served: str, conn: redis.Redis, wh: Warehouse
) -> None:
    # 20 MB of valid JSON: parsed, it would be a 422 (unknown field), not a 413.
    body = json.dumps({"days": 1, "pad": "x" * 20_000_000}).encode()

    answer = httpx.post(
        f"{served}/runs",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )

    assert answer.status_code == 413
    assert str(MAX_BODY_BYTES) in answer.json()["detail"]
    assert _nothing_queued(conn, wh)


def test_a_streamed_body_without_a_length_is_cut_off_at_the_cap(
    served: str, conn: redis.Redis, wh: Warehouse
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"days": 1, "pad": "'
        for _ in range(50):  # 50 × 4 KB: three times the cap
            yield b"x" * 4096
        yield b'"}'

    answer = httpx.post(
        f"{served}/runs",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )

    assert answer.status_code == 413
    assert _nothing_queued(conn, wh)


def test_a_body_under_the_cap_still_reaches_validation(
    client: TestClient, conn: redis.Redis
) -> None:
    near = {"days": 1, "pad": "x" * (MAX_BODY_BYTES - 100)}

    answer = client.post("/runs", json=near, headers=AUTH)

    assert answer.status_code == 422
    assert "pad" in json.dumps(answer.json())
    assert queue_for(conn, "sample").count == 0


def _bad_windows() -> list[tuple[dict[str, object], str]]:
    today = today_msk()
    too_late = today + timedelta(days=MAX_DAYS_AHEAD + 1)
    return [
        ({"days": 10**9}, f"at least 1 and at most {MAX_WINDOW_DAYS}"),
        ({"days": MAX_WINDOW_DAYS + 1}, f"at least 1 and at most {MAX_WINDOW_DAYS}"),
        ({"days": 0}, f"at least 1 and at most {MAX_WINDOW_DAYS}"),
        ({"since": "9999-12-31"}, "out of range"),
        ({"since": "1999-12-31", "to": "2000-01-05"}, "out of range"),
        ({"since": today.isoformat(), "to": too_late.isoformat()}, "out of range"),
        ({"since": "2000-01-01", "to": "2015-01-01"}, "split it"),
        ({"since": "2005-01-01"}, "split it"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    _bad_windows(),
    ids=[
        "days_a_billion",
        "days_just_over",
        "days_zero",
        "since_year_9999",
        "since_before_2000",
        "to_past_a_year_ahead",
        "window_over_ten_years",
        "since_alone_over_ten_years",
    ],
)
def test_a_window_out_of_bounds_is_422_with_the_bounds(
    client: TestClient, conn: redis.Redis, wh: Warehouse, body: dict[str, object], message: str
) -> None:
    answer = client.post("/runs", json=body, headers=AUTH)

    assert answer.status_code == 422, answer.text
    assert message in json.dumps(answer.json())
    assert _nothing_queued(conn, wh)


def test_the_widest_windows_allowed_are_queued(client: TestClient, conn: redis.Redis) -> None:
    latest = today_msk() + timedelta(days=MAX_DAYS_AHEAD)
    since = latest - timedelta(days=MAX_WINDOW_DAYS - 1)

    widest = client.post(
        "/runs", json={"since": since.isoformat(), "to": latest.isoformat()}, headers=AUTH
    )

    assert widest.status_code == 202, widest.text
    assert queue_for(conn, "sample").count == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "sample", "--days", "1000000000"],
            f"--days must be at least 1 and at most {MAX_WINDOW_DAYS}",
        ),
        (["run", "sample", "--since", "9999-12-31"], "--since 9999-12-31 is out of range"),
        (["backfill", "sample", "--since", "1990-01-01", "--to", "2020-01-01"], "is out of range"),
        (["backfill", "sample", "--since", "2001-01-01", "--to", "2020-01-01"], "split it"),
    ],
    ids=["run_days", "run_since", "backfill_before_2000", "backfill_too_long"],
)
def test_the_cli_refuses_the_same_windows_with_exit_1(
    sample: SourceManifest, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 1, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
