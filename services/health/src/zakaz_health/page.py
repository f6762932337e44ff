"""The status page for people: one card per source, the open alerts, the last runs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from zakaz_common.alerts import Alert
from zakaz_common.timeutil import to_msk

from zakaz_health import wording
from zakaz_health.state import RunInfo, Snapshot, SourceState

#: Rows in the page's "last runs" table.
LAST_RUNS_SHOWN = 25

#: Seconds between the page's own reloads: a wall screen stays current without a script.
REFRESH_SECONDS = 60

#: Longest error text shown on a card; the full text is in `/healthz/{source}`.
CARD_MESSAGE_CHARS = 240


@dataclass(frozen=True)
class Card:
    """What one source's card shows."""

    source: str
    title: str
    colour: str
    reason: str
    #: (label, value, tooltip) rows.
    facts: list[tuple[str, str, str]]
    message: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("zakaz_health", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(snap: Snapshot) -> str:
    """The status page's HTML for a snapshot."""
    runs = sorted(
        ((s.source, r) for s in snap.sources for r in s.recent_runs),
        key=lambda pair: pair[1].started_at,
        reverse=True,
    )[:LAST_RUNS_SHOWN]
    counts: dict[str, int] = {}
    for s in snap.sources:
        counts[s.grade[0]] = counts.get(s.grade[0], 0) + 1
    context: dict[str, Any] = {
        "generated": wording.moscow(snap.now),
        "refresh": REFRESH_SECONDS,
        "cards": [_card(s, snap.now) for s in snap.sources],
        "counts": counts,
        "alerts": [_alert_row(a) for a in snap.alerts],
        "runs": [_run_row(source, r) for source, r in runs],
        "redis_error": snap.redis_error,
    }
    return _environment().get_template("status.html").render(**context)


def render_error(message: str) -> str:
    """The page shown when the warehouse cannot be read at all."""
    return _environment().get_template("error.html").render(message=message)


def _card(s: SourceState, now: float) -> Card:
    colour, reason = s.grade
    if not s.installed:
        return Card(s.source, s.title, colour, reason, [], "")
    last = s.last_run
    facts = [
        ("Data up to", s.last_data_date.isoformat() if s.last_data_date else "—", ""),
        ("Last success", _ago(s.last_success_at, now), wording.moscow(s.last_success_at)),
        (
            "Last run",
            f"{last.status} · {_ago(last.started_at, now)}" if last else "never",
            wording.moscow(last.started_at) if last else "",
        ),
        (
            "Rows, last load",
            f"{s.last_success_rows:,}" if s.last_success_rows is not None else "—",
            "",
        ),
        ("Budget", wording.duration(s.budget_seconds), "freshness budget"),
        ("Queue", _queue(s), ""),
        ("Worker", _worker(s), ""),
        ("Enabled", "yes" if s.enabled else "no", ""),
    ]
    message = ""
    if s.failed and s.last_verdict is not None:
        message = s.last_verdict.message[:CARD_MESSAGE_CHARS]
    return Card(s.source, s.title, colour, reason, facts, message)


def _queue(s: SourceState) -> str:
    if s.queue is None:
        return "unknown"
    return f"{s.queue.depth} waiting · {s.queue.failed_jobs} failed"


def _worker(s: SourceState) -> str:
    if s.queue is None:
        return "unknown"
    return "up" if s.queue.worker_alive else "none alive"


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    return f"{wording.duration(now - ts)} ago"


def _alert_row(a: Alert) -> dict[str, str]:
    return {
        "source": a.job,
        "kind": a.kind.replace("_", " "),
        "severity": a.severity,
        "since": to_msk(a.created_at).strftime("%Y-%m-%d %H:%M"),
        "message": a.message,
    }


def _run_row(source: str, r: RunInfo) -> dict[str, str]:
    return {
        "source": source,
        "status": r.status,
        "started": wording.moscow(r.started_at, zone=False),
        "duration": wording.duration(r.duration_seconds),
        "rows": f"{r.rows_processed:,}",
        "rejected": f"{r.rows_rejected:,}",
        "message": r.message[:CARD_MESSAGE_CHARS],
    }
