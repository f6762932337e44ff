"""Failover to Gmail: stale primaries enable the gmail schedule with an alert; a fresh one
disables it again and resolves the alert (a real Redis, run rows in the warehouse, a real SMTP)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from health_support import Runs
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.scheduler import is_enabled, set_enabled
from zakaz_common.testing import free_port
from zakaz_health.alerting import evaluate
from zakaz_health.failover import FAILOVER, evaluate_failover, marker_key
from zakaz_health.settings import AlertSettings

HOUR = 3_600.0


class Inbox:
    """An aiosmtpd handler keeping the subjects it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept and keep the message."""
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    @property
    def subjects(self) -> list[str]:
        """The subjects received, in order."""
        return [str(m["Subject"]) for m in self.messages]


@pytest.fixture
def mail() -> Iterator[tuple[Inbox, AlertSettings]]:
    """A real SMTP server on loopback and alert settings pointing at it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, AlertSettings(email_to="ops@example.org", smtp_host="127.0.0.1", smtp_port=port)
    controller.stop()


def _gmail(conn: redis.Redis, manifests: list[SourceManifest]) -> bool:
    return is_enabled(conn, "gmail", next(m for m in manifests if m.name == "gmail"))


def _failover_mails(inbox: Inbox) -> list[str]:
    return [s for s in inbox.subjects if "failover" in s]


def _failover_alerts(wh: Warehouse) -> list[str]:
    return [a.message for a in open_alerts(wh, "gmail") if a.kind == FAILOVER]


def test_stale_primaries_enable_gmail_with_an_alert_and_a_fresh_one_disables_it(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    mail: tuple[Inbox, AlertSettings],
) -> None:
    inbox, settings = mail
    now = time.time()
    runs.add("qtickets_sheets", "success", finished_ago=0, rows=120, now=now)
    runs.add("qtickets_api", "success", finished_ago=0, rows=80, now=now)

    fresh = evaluate(wh, conn, manifests, now, settings=settings)

    assert not _gmail(conn, manifests) and _failover_alerts(wh) == []
    assert "gmail:failover" not in fresh.to_dict()["raised"]

    # The clock moves two hours on and neither primary loads: both are past their 30 min.
    later = now + 2 * HOUR
    stale = evaluate(wh, conn, manifests, later, settings=settings)

    assert _gmail(conn, manifests)
    assert "gmail:failover" in stale.to_dict()["raised"]
    [message] = _failover_alerts(wh)
    assert "qtickets_sheets last loaded 2 h ago (budget 30 min)" in message
    assert "qtickets_api last loaded 2 h ago" in message
    assert _failover_mails(inbox) == ["[zakaz] warning: gmail failover"]

    # Still stale a little later: nothing new, no second alert or mail.
    again = evaluate(wh, conn, manifests, later + 60, settings=settings)
    assert "gmail:failover" not in again.to_dict()["raised"] and _gmail(conn, manifests)
    assert len(_failover_alerts(wh)) == 1
    assert _failover_mails(inbox) == ["[zakaz] warning: gmail failover"]

    # The Sheets feed loads again: gmail goes back off and the alert is resolved (and mailed).
    runs.add("qtickets_sheets", "success", finished_ago=0, rows=121, now=later + 120)
    recovered = evaluate(wh, conn, manifests, later + 120, settings=settings)

    assert not _gmail(conn, manifests)
    assert "gmail:failover" in recovered.to_dict()["resolved"]
    assert _failover_alerts(wh) == []
    assert conn.get(marker_key()) is None
    assert _failover_mails(inbox) == [
        "[zakaz] warning: gmail failover",
        "[zakaz] resolved: gmail failover",
    ]


def test_one_fresh_primary_is_enough(
    wh: Warehouse, conn: redis.Redis, manifests: list[SourceManifest], runs: Runs
) -> None:
    now = time.time()
    runs.add("qtickets_sheets", "success", finished_ago=3 * HOUR, now=now)
    runs.add("qtickets_api", "success", finished_ago=60, now=now)

    report = evaluate_failover(wh, conn, manifests, now)

    assert report.primaries_down is False and report.action == "none"
    assert not _gmail(conn, manifests)


def test_primaries_that_never_loaded_count_as_down_only_once_they_ran(
    wh: Warehouse, conn: redis.Redis, manifests: list[SourceManifest], runs: Runs
) -> None:
    now = time.time()
    assert evaluate_failover(wh, conn, manifests, now).primaries_down is False  # new deployment

    runs.add("qtickets_sheets", "error", finished_ago=60, message="403 not shared", now=now)
    runs.add("qtickets_api", "error", finished_ago=60, message="401", now=now)
    report = evaluate_failover(wh, conn, manifests, now)

    assert report.action == "enabled" and _gmail(conn, manifests)
    assert "qtickets_sheets has never loaded successfully" in report.reason


def test_a_gmail_schedule_enabled_by_hand_is_left_alone(
    wh: Warehouse, conn: redis.Redis, manifests: list[SourceManifest], runs: Runs
) -> None:
    now = time.time()
    set_enabled(conn, "gmail", True)
    runs.add("qtickets_sheets", "success", finished_ago=3 * HOUR, now=now)
    runs.add("qtickets_api", "success", finished_ago=3 * HOUR, now=now)

    down = evaluate_failover(wh, conn, manifests, now)
    runs.add("qtickets_api", "success", finished_ago=0, now=now + 60)
    up = evaluate_failover(wh, conn, manifests, now + 60)

    assert (down.action, up.action) == ("none", "none")
    assert "operator" in down.reason
    assert _gmail(conn, manifests) and _failover_alerts(wh) == []


def test_nothing_to_fail_over_without_gmail_or_primaries_or_redis(
    wh: Warehouse, conn: redis.Redis, manifests: list[SourceManifest], runs: Runs
) -> None:
    now = time.time()
    runs.add("qtickets_sheets", "success", finished_ago=3 * HOUR, now=now)
    runs.add("qtickets_api", "success", finished_ago=3 * HOUR, now=now)
    no_gmail = [m for m in manifests if m.name != "gmail"]
    no_primary = [m for m in manifests if not m.name.startswith("qtickets")]

    assert evaluate_failover(wh, conn, no_gmail, now).action == "none"
    assert evaluate_failover(wh, conn, no_primary, now).action == "none"
    assert conn.get("zakaz:enabled:gmail") is None
    without_redis = evaluate_failover(wh, None, manifests, now)
    assert without_redis.errors == ["failover not evaluated: no Redis connection"]
