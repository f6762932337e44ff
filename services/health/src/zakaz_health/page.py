"""The status page for people: the day's figures, one card per source, open alerts, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from zakaz_common.alerts import Alert
from zakaz_common.redact import scrub
from zakaz_common.timeutil import to_msk

from zakaz_health import wording
from zakaz_health.figures import Figures
from zakaz_health.history import HistoryLine, group
from zakaz_health.rules import RED_SEVERITIES, also
from zakaz_health.state import Snapshot, SourceState

#: Rows in the page's "last runs" table.
LAST_RUNS_SHOWN = 25

#: Seconds between the page's own reloads: a wall screen stays current without a script.
REFRESH_SECONDS = 60

#: Longest raw detail shown behind a click; the full text is in `/healthz/{source}`.
DETAIL_CHARS = 2000


@dataclass(frozen=True)
class Card:
    """What one source's card shows."""

    source: str
    title: str
    colour: str
    reason: str
    #: (label, value, tooltip) rows.
    facts: list[tuple[str, str, str]]
    #: One sentence for people saying what is wrong ("" when nothing is).
    sentence: str = ""
    #: The raw text behind the sentence, shown on a click; scrubbed of secrets and PII.
    detail: str = ""
    #: What else is wrong besides what gave the colour.
    also: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Extras:
    """What the page shows besides the snapshot: history, figures, dashboard links."""

    history: list[HistoryLine] | None = None
    figures: Figures | None = None
    #: Why the figures could not be read, when they could not.
    figures_error: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("zakaz_health", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(snap: Snapshot, extras: Extras | None = None) -> str:
    """The status page's HTML for a snapshot (history from the snapshot's runs if not given)."""
    extras = extras or Extras()
    history = extras.history
    if history is None:
        history = group((s.source, r) for s in snap.sources for r in s.recent_runs)
    titles = {s.source: s.title for s in snap.sources}
    counts: dict[str, int] = {}
    for s in snap.sources:
        key = "standby" if s.verdict.rule == "standby" else s.grade[0]
        counts[key] = counts.get(key, 0) + 1
    context: dict[str, Any] = {
        "generated": wording.moscow(snap.now),
        "refresh": REFRESH_SECONDS,
        "cards": [_card(s, snap) for s in snap.sources],
        "counts": counts,
        "alerts": [_alert_row(a, titles) for a in snap.alerts],
        "runs": [_history_row(line, titles) for line in history[:LAST_RUNS_SHOWN]],
        "redis_error": snap.redis_error,
        "figures": _figures(extras.figures) if extras.figures else None,
        "figures_error": extras.figures_error,
        "links": extras.links,
    }
    return _environment().get_template("status.html").render(**context)


def render_error(message: str) -> str:
    """The page shown when the warehouse cannot be read at all."""
    return _environment().get_template("error.html").render(message=message)


def _card(s: SourceState, snap: Snapshot) -> Card:
    now = snap.now
    verdict = s.verdict
    if not s.installed:
        return Card(s.source, s.title, verdict.colour, verdict.reason, [])
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
    sentence, detail = _explanation(s, snap)
    return Card(
        s.source,
        s.title,
        verdict.colour,
        verdict.reason,
        facts,
        sentence,
        detail,
        also(s.signals),
    )


def _explanation(s: SourceState, snap: Snapshot) -> tuple[str, str]:
    """The sentence of what the card's rule found, and the raw text behind it."""
    rule = s.verdict.rule
    if rule == "failed" and s.last_verdict is not None:
        raw = s.last_verdict.message
        return wording.explain(raw, s.title) or "The last run failed.", raw[:DETAIL_CHARS]
    if rule == "partial" and s.last_verdict is not None:
        return "The last run loaded, but some of its parts failed.", s.last_verdict.message[
            :DETAIL_CHARS
        ]
    if rule in {"error_alert", "warning_alert"}:
        red = rule == "error_alert"
        alert = next(
            a for a in snap.alerts if a.job == s.source and (a.severity in RED_SEVERITIES) == red
        )
        sentence = wording.alert_sentence(alert.kind, alert.message, s.title)
        return sentence, scrub(alert.message)[:DETAIL_CHARS]
    if rule == "stale":
        return (
            f"No successful load for {wording.duration(s.age_seconds)}, more than its "
            f"freshness budget of {wording.duration(s.budget_seconds)}.",
            "",
        )
    if rule == "worker_dead":
        return f"No worker is serving its queue; is the {s.source} service running?", ""
    if rule == "standby":
        return "The backup channel: off by design, switched on when the primary feeds fail.", ""
    return "", ""


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


def _alert_row(a: Alert, titles: dict[str, str]) -> dict[str, str]:
    return {
        "source": a.job,
        "kind": a.kind.replace("_", " "),
        "severity": a.severity,
        "since": to_msk(a.created_at).strftime("%Y-%m-%d %H:%M"),
        "sentence": wording.alert_sentence(a.kind, a.message, titles.get(a.job)),
        "detail": scrub(a.message)[:DETAIL_CHARS],
    }


def _history_row(line: HistoryLine, titles: dict[str, str]) -> dict[str, str]:
    r = line.run
    what = "run"
    if line.backfill:
        span = f"{line.since} … {line.to}" if line.since and line.to else "dates unknown"
        failed = f", {line.chunks_failed} failed" if line.chunks_failed else ""
        what = f"backfill {span} · {line.chunks_ok}/{line.chunks} chunks ok{failed}"
    elif r.trigger:
        what = r.trigger
    failed_message = line.status == "error" or r.partial
    raw = r.message if failed_message else ""
    return {
        "source": line.source,
        "what": what,
        "backfill": "1" if line.backfill else "",
        "status": line.status,
        "started": wording.moscow(line.started_at, zone=False),
        "duration": wording.duration(line.duration_seconds),
        "rows": f"{line.rows_processed:,}",
        "rejected": f"{line.rows_rejected:,}",
        "sentence": wording.explain(raw, titles.get(line.source)) if raw else "",
        "detail": raw[:DETAIL_CHARS],
    }


def _figures(f: Figures) -> list[dict[str, str]]:
    return [
        {
            "label": label,
            "day": day.day.isoformat(),
            "revenue": _rubles(day.revenue),
            "spend": _rubles(day.spend),
            "romi": f"{day.romi:.2f}" if day.romi is not None else "—",
            "romi_colour": day.romi_colour,
        }
        for label, day in (("Today", f.today), ("Yesterday", f.yesterday))
    ]


def _rubles(amount: Decimal) -> str:
    # Thin no-break spaces between thousands, as Russian money is written.
    return f"{amount:,.0f}".replace(",", "\u202f") + " ₽"
