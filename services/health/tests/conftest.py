"""Fixtures of the health tests: the contract's manifests, run rows in the past, live workers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest

# The helper module beside the tests imports by name.
sys.path.insert(0, str(Path(__file__).parent))

from health_support import Runs, manifest


@pytest.fixture
def manifests() -> list[SourceManifest]:
    """The five contract sources with the budgets of issue 3 (gmail disabled by default)."""
    return [
        manifest("qtickets_sheets", "QTickets Sheets", "*/15 * * * *", timedelta(minutes=30)),
        manifest("qtickets_api", "QTickets API", "*/15 * * * *", timedelta(minutes=30)),
        manifest("vk_ads", "VK Ads", "0 0 * * *", timedelta(days=2)),
        manifest("direct", "Yandex Direct", "10 0 * * *", timedelta(days=2)),
        manifest("gmail", "Gmail sales", "0 */4 * * *", timedelta(hours=8), enabled=False),
    ]


@pytest.fixture
def conn(redis_url: str) -> redis.Redis:
    """A client of the test's (empty) Redis."""
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def runs(wh: Warehouse) -> Runs:
    """A recorder of run rows in the test's database."""
    return Runs(wh)


@pytest.fixture
def live_worker(conn: redis.Redis) -> Iterator[Callable[[str], Worker]]:
    """Registers an RQ worker (birth and heartbeat, as a running one does) on a source's queue."""
    started: list[Worker] = []

    def register(source: str) -> Worker:
        worker = Worker(
            [Queue(source, connection=conn)],
            connection=conn,
            name=f"test-{source}-{uuid.uuid4().hex[:6]}",
        )
        worker.register_birth()
        started.append(worker)
        return worker

    yield register
    for worker in started:
        worker.register_death()
