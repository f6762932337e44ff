"""How the page writes for people: Moscow time, short units, errors as one sentence."""

from __future__ import annotations

import re
from datetime import datetime

from zakaz_common.redact import scrub
from zakaz_common.timeutil import MSK


def duration(seconds: float | None) -> str:
    """A duration in the two largest units, e.g. `2 d 3 h`, `5 h 10 min`, `40 s`; `—` for None."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def moscow(ts: float | None, *, zone: bool = True) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM MSK` (without ` MSK` if not `zone`); `—` for None."""
    if ts is None:
        return "—"
    text = datetime.fromtimestamp(ts, MSK).strftime("%Y-%m-%d %H:%M")
    return f"{text} MSK" if zone else text


#: Longest fallback sentence taken from a message no pattern knows.
SENTENCE_CHARS = 160

#: Counted things a bare number may be followed by, so `500 rows` is not read as HTTP 500.
_COUNTED = r"(?!\s*(?:rows?|keys?|days?|messages?|ids?|jobs?|chunks?|ms|s)\b)"

#: (pattern, sentence) in order: the first that matches the message gives its sentence.
#: `{who}` is the source's title (or "The upstream"). Causes inside wrappers come first:
#: "Max retries exceeded (Caused by ConnectTimeoutError)" is a timeout, not a refusal.
_EXPLANATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), sentence)
    for pattern, sentence in (
        (
            r"\b40[13]\b" + _COUNTED + r"|unauthori[sz]ed|forbidden|invalid_grant|invalid_client"
            r"|refused the (?:token|key|credentials|service-account)|credentials were refused"
            r"|access denied|permission denied",
            "{who} refused our credentials: check the source's token or key in its settings.",
        ),
        (
            r"\b429\b" + _COUNTED + r"|rate.?limit|too many requests|quota",
            "{who} limited our requests (rate limit); the next run tries again.",
        ),
        (
            r"\b5\d\d\b" + _COUNTED + r"|internal server error|bad gateway|service unavailable"
            r"|gateway time-?out",
            "{who} had a server error; this usually passes and the next run tries again.",
        ),
        (
            r"deadline",
            "The run reached its time limit before it finished; the next attempt tries again.",
        ),
        (
            r"timed? ?out|timeout|did not answer (?:with)?in",
            "{who} did not answer in time.",
        ),
        (
            r"connection refused|unreachable|failed to establish|max retries exceeded"
            r"|name or service not known|name resolution|connection (?:reset|aborted|error)"
            r"|no route to host",
            "{who} could not be reached: the connection failed.",
        ),
        (
            r"abandoned|interrupted|stop signal|was told to stop|lock was lost|lost (?:its|the) lock",
            "The run was interrupted before it finished; the next run starts over.",
        ),
        (
            r"header|missing column|lacks the columns?|required column|schema|unknown column"
            r"|no column",
            "{who} changed its layout (a header or column is missing or renamed); "
            "fix it upstream and run again.",
        ),
        (
            r"held back|kept at their last good value",
            "Some rows could not be read, so their keys keep their last good values.",
        ),
        (
            r"rows? (?:were |was )?rejected|rejected rows|unreadable rows|rows? could not be read",
            "Too many rows could not be read; see the rejects table.",
        ),
        (
            r"without some of its parts|partial",
            "The run loaded, but some of its parts failed.",
        ),
        (
            r"\bstale\b|no successful load|older than (?:its|the) (?:freshness )?budget",
            "No fresh data: the last successful load is older than its freshness budget.",
        ),
        (
            r"no rq worker|worker (?:is )?dead|no worker",
            "No worker is serving the source's queue; is its service running?",
        ),
        (
            r"failed-job registry",
            "Jobs of the source are failing in its queue.",
        ),
        (
            r"failover|backup",
            "The backup channel is on because the primary sales feeds are stale.",
        ),
    )
)

#: Signs of text meant for programmers: exception reprs, pools, tracebacks, addresses.
_RAW = re.compile(
    r"Traceback|\w+(?:Error|Exception)\(|\w+Pool\(|<[\w.]+ object at 0x|Caused by|\bFile \"",
)
_CLASS_PREFIX = re.compile(r"^(?:[\w.]+(?:Error|Exception|Warning)\s*:\s*)+")


def explain(message: str, who: str | None = None) -> str:
    """One sentence for people saying what went wrong; the raw detail is for a click away."""
    text = scrub(" ".join((message or "").split()))
    if not text:
        return ""
    subject = who or "The upstream"
    for pattern, sentence in _EXPLANATIONS:
        if pattern.search(text):
            return sentence.format(who=subject)
    if _RAW.search(text) or _CLASS_PREFIX.match(text):
        return "The run failed with an unexpected error; the detail is below."
    first = re.split(r"(?<=[.;!?])\s|\s\(|:\s", text, maxsplit=1)[0]
    first = first.rstrip(".;:!? ")
    if len(first) > SENTENCE_CHARS:
        first = first[: SENTENCE_CHARS - 1].rstrip() + "…"
    return f"{first[:1].upper()}{first[1:]}." if first else ""


#: Sentences of the alert kinds whose cause the kind itself says (`alerting`, `failover`,
#: `zakaz_common.runs`); other kinds (`run_failed`) are explained from their message.
ALERT_SENTENCES = {
    "stale": "No fresh data: the last successful load is older than its freshness budget.",
    "worker_dead": "No worker is serving the source's queue; is its service running?",
    "failed_jobs": "Jobs of the source are failing in its queue.",
    "partial": "A run loaded, but some of its parts failed.",
    "held_back": "Some rows could not be read, so their keys keep their last good values.",
    "failover": "The backup channel is on because the primary sales feeds are stale.",
}


def alert_sentence(kind: str, message: str, who: str | None = None) -> str:
    """One sentence for an open alert: by its kind when that says it, else from its message."""
    return ALERT_SENTENCES.get(kind) or explain(message, who)
