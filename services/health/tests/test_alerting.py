"""The alert job: raised once, mailed once, resolved with a "resolved" mail; a real SMTP server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from health_support import Runs, manifest
from rq import Queue, SimpleWorker, Worker
from zakaz_common.alerts import open_alerts, raise_alert
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.manifest import SourceManifest, register, unregister
from zakaz_common.migrate import migrate
from zakaz_common.testing import free_port
from zakaz_health.alerting import FAILED_JOBS, STALE, WORKER_DEAD, evaluate, evaluate_alerts
from zakaz_health.queues import WORKER_HEARTBEAT_MAX_AGE_SECONDS, enabled_key
from zakaz_health.settings import AlertSettings

DAY = 86_400.0


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

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
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback (aiosmtpd) and its port."""
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def mail_env(inbox: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """The contract's e-mail variables pointing at the loopback SMTP server."""
    handler, port = inbox
    monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.org, owner@example.org")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_FROM", "zakaz@example.org")
    return handler


@pytest.fixture
def no_mail_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No alert e-mail configured."""
    for name in ("ALERT_EMAIL_TO", "SMTP_HOST", "SMTP_PORT", "SMTP_FROM"):
        monkeypatch.delenv(name, raising=False)


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_a_stale_source_alerts_and_mails_once_then_resolves_with_a_resolved_mail(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
    mail_env: Inbox,
) -> None:
    now = time.time()
    direct = [m for m in manifests if m.name == "direct"]
    runs.add("direct", "success", finished_ago=3 * DAY, rows=10, now=now)
    live_worker("direct")

    first = evaluate(wh, conn, direct, now)

    assert [(a.job, a.kind) for a in first.raised] == [("direct", STALE)]
    assert first.errors == []
    assert mail_env.subjects == ["[zakaz] warning: direct stale"]
    mail = mail_env.messages[0]
    assert mail["To"] == "ops@example.org, owner@example.org"
    assert mail["From"] == "zakaz@example.org"
    assert "no successful load for 3 d" in body(mail)
    assert "freshness budget of 2 d" in body(mail)
    [alert] = open_alerts(wh, "direct")
    assert (alert.kind, alert.notified) == (STALE, True)

    again = evaluate(wh, conn, direct, now + 60)

    assert again.raised == [] and again.resolved == [] and again.mailed == []
    assert len(mail_env.messages) == 1
    assert len(open_alerts(wh, "direct")) == 1

    runs.add("direct", "success", finished_ago=0, rows=12, now=now + 120)
    fixed = evaluate(wh, conn, direct, now + 120)

    assert [(a.job, a.kind) for a in fixed.resolved] == [("direct", STALE)]
    assert open_alerts(wh, "direct") == []
    assert mail_env.subjects == ["[zakaz] warning: direct stale", "[zakaz] resolved: direct stale"]
    assert body(mail_env.messages[1]).startswith("Resolved at ")
    assert ": direct stale. The problem below no longer holds." in body(mail_env.messages[1])
    notified = wh.scalar(
        "SELECT notified FROM alerts FINAL WHERE alert_id = {id:String}", {"id": alert.alert_id}
    )
    assert notified == 2

    evaluate(wh, conn, direct, now + 180)
    assert len(mail_env.messages) == 2


def test_a_growing_failed_registry_raises_failed_jobs(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    live_worker: Callable[[str], Worker],
    no_mail_env: None,
) -> None:
    vk = [m for m in manifests if m.name == "vk_ads"]
    live_worker("vk_ads")
    assert evaluate(wh, conn, vk, time.time()).raised == []

    queue = Queue("vk_ads", connection=conn)
    queue.enqueue("json.loads", "not json")
    SimpleWorker([queue], connection=conn).work(burst=True)
    grown = evaluate(wh, conn, vk, time.time())

    assert [(a.job, a.kind) for a in grown.raised] == [("vk_ads", FAILED_JOBS)]
    assert "grew from 0 to 1" in grown.raised[0].message

    steady = evaluate(wh, conn, vk, time.time())

    assert [(a.job, a.kind) for a in steady.resolved] == [("vk_ads", FAILED_JOBS)]


def test_a_dead_worker_alerts_for_enabled_sources_only(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    live_worker: Callable[[str], Worker],
    no_mail_env: None,
) -> None:
    pair = [m for m in manifests if m.name in {"vk_ads", "gmail"}]  # gmail: disabled

    report = evaluate(wh, conn, pair, time.time())

    assert [(a.job, a.kind) for a in report.raised] == [("vk_ads", WORKER_DEAD)]

    live_worker("vk_ads")
    revived = evaluate(wh, conn, pair, time.time())
    assert [(a.job, a.kind) for a in revived.resolved] == [("vk_ads", WORKER_DEAD)]

    # A registered worker whose heartbeat is older than RQ's TTL is dead all the same.
    later = time.time() + WORKER_HEARTBEAT_MAX_AGE_SECONDS + 60
    silent = evaluate(wh, conn, pair, later)
    assert [(a.job, a.kind) for a in silent.raised] == [("vk_ads", WORKER_DEAD)]


def test_a_disabled_source_is_never_stale(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
    no_mail_env: None,
) -> None:
    gmail = [m for m in manifests if m.name == "gmail"]
    runs.add("gmail", "success", finished_ago=10 * DAY)

    assert evaluate(wh, conn, gmail, time.time()).raised == []

    conn.set(enabled_key("gmail"), "1")
    live_worker("gmail")
    assert [a.kind for a in evaluate(wh, conn, gmail, time.time()).raised] == [STALE]


def test_without_smtp_settings_alerts_are_stored_and_nothing_fails(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
    no_mail_env: None,
) -> None:
    direct = [m for m in manifests if m.name == "direct"]
    runs.add("direct", "success", finished_ago=3 * DAY)
    live_worker("direct")

    report = evaluate(wh, conn, direct, time.time())

    assert [a.kind for a in report.raised] == [STALE]
    assert report.mailed == [] and report.errors == []
    [alert] = open_alerts(wh, "direct")
    assert alert.notified is False


def test_a_failed_run_alert_is_mailed_without_its_secrets(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    live_worker: Callable[[str], Worker],
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    settings = AlertSettings(email_to="ops@example.org", smtp_host="127.0.0.1", smtp_port=port)
    live_worker("vk_ads")
    # What zakaz_common.runs raises when a run fails (not raised again by the alert job).
    raise_alert(
        wh,
        "vk_ads",
        "run_failed",
        "error",
        "vk_ads run failed: 401 from https://user:s3cretpw@ads.vk.com token=abc123secret",
    )

    report = evaluate(
        wh, conn, [m for m in manifests if m.name == "vk_ads"], time.time(), settings=settings
    )

    assert report.raised == []
    assert handler.subjects == ["[zakaz] error: vk_ads run failed"]
    text = body(handler.messages[0])
    assert "401" in text
    assert "s3cretpw" not in text and "abc123secret" not in text


def test_an_unreachable_smtp_server_is_reported_and_retried_next_time(
    wh: Warehouse,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    direct = [m for m in manifests if m.name == "direct"]
    runs.add("direct", "success", finished_ago=3 * DAY)
    live_worker("direct")
    down = AlertSettings(
        email_to="ops@example.org",
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_password="pw-never-shown",
    )

    failed = evaluate(wh, conn, direct, time.time(), settings=down)

    assert [a.kind for a in failed.raised] == [STALE]
    assert failed.mailed == [] and len(failed.errors) == 1
    assert "pw-never-shown" not in failed.errors[0]
    assert open_alerts(wh, "direct")[0].notified is False

    up = AlertSettings(email_to="ops@example.org", smtp_host="127.0.0.1", smtp_port=port)
    retried = evaluate(wh, conn, direct, time.time(), settings=up)

    assert retried.raised == [] and len(retried.mailed) == 1
    assert handler.subjects == ["[zakaz] warning: direct stale"]


def test_the_rq_job_reads_its_settings_and_returns_a_summary(
    redis_url: str,
    manifests: list[SourceManifest],
    monkeypatch: pytest.MonkeyPatch,
    no_mail_env: None,
) -> None:
    database = f"t_job_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CH_DATABASE", database)
    stale = manifest("afisha", "Afisha", "0 * * * *", manifests[0].freshness_budget)
    wh = open_warehouse()
    migrate(wh)
    Runs(wh).add("afisha", "success", finished_ago=DAY)
    register(stale)
    try:
        result = evaluate_alerts()
    finally:
        unregister(stale.name)
        wh.command(f"DROP DATABASE IF EXISTS `{database}`")

    assert "afisha:stale" in result["raised"]
    assert "afisha:worker_dead" in result["raised"]
    assert result["errors"] == []
