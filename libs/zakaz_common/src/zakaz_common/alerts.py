"""Alerts: stored in the `alerts` table, raised once per problem until the problem resolves."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from zakaz_common import clock
from zakaz_common.clickhouse import Warehouse
from zakaz_common.redact import scrub

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Alert:
    """One alert as stored."""

    alert_id: str
    created_at: datetime
    job: str
    severity: str
    kind: str
    message: str
    notified: bool
    resolved_at: datetime | None


_COLUMNS = [
    "alert_id",
    "created_at",
    "job",
    "severity",
    "kind",
    "message",
    "notified",
    "resolved_at",
    "_ver",
]


def open_alerts(wh: Warehouse, job: str | None = None) -> list[Alert]:
    """Alerts not yet resolved, newest first (optionally of one job)."""
    rows = wh.rows(
        "SELECT alert_id, created_at, job, severity, kind, message, notified, resolved_at "
        "FROM alerts FINAL WHERE resolved_at IS NULL AND ({job:String} = '' OR job = {job:String}) "
        "ORDER BY created_at DESC",
        {"job": job or ""},
    )
    return [Alert(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]


def raise_alert(
    wh: Warehouse, job: str, kind: str, severity: Severity, message: str
) -> Alert | None:
    """Store an alert unless one of the same job and kind is still open; returns the new one."""
    if any(a.kind == kind for a in open_alerts(wh, job)):
        return None
    now = int(clock.now())
    alert_id = uuid.uuid4().hex
    text = scrub(message)[:2000]
    wh.insert(
        "alerts", [(alert_id, now, job, severity, kind, text, 0, None, time.time_ns())], _COLUMNS
    )
    return Alert(alert_id, datetime.fromtimestamp(now), job, severity, kind, text, False, None)


def resolve_alerts(wh: Warehouse, job: str, kind: str) -> list[Alert]:
    """Mark the open alerts of a job and kind resolved; returns what was resolved."""
    found = [a for a in open_alerts(wh, job) if a.kind == kind]
    if not found:
        return []
    now = int(clock.now())
    ver = time.time_ns()
    wh.insert(
        "alerts",
        [
            (
                a.alert_id,
                a.created_at,
                a.job,
                a.severity,
                a.kind,
                a.message,
                int(a.notified),
                now,
                ver,
            )
            for a in found
        ],
        _COLUMNS,
    )
    return found
