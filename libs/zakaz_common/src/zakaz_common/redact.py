"""Keeping secrets and PII out of logs, errors, metrics and tables.

`scrub` removes what looks like an e-mail, a phone number, a card number, a bearer token or a
password in a URL from free text; `RedactingFilter` applies it to every log record. A run of
digits is a card number only when it has a card's length (13–19 digits, maybe in groups of four)
and passes the Luhn check, so Unix times, ad ids and order numbers stay readable; a masked card
(`220220******6407`) is always one.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import datetime

from zakaz_common.timeutil import MSK

#: Digits in a card number (ISO/IEC 7812): shorter or longer runs are ids, times or amounts.
CARD_DIGITS = range(13, 20)

#: Candidates for a full card number: a run of 13–19 digits, or groups of four (the last ones
#: shorter) or 4-6-5 separated by one space or dash, not inside a longer word or number.
_CARD = re.compile(
    r"(?<![0-9A-Za-z_*])"
    r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{5})"
    r"(?![0-9A-Za-z_*])"
)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum that every card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if len(digits) in CARD_DIGITS and luhn_valid(digits):
        return "<card>"
    return match.group(0)


_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # user:password@host in URLs and DSNs
    (re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)", re.I), r"\g<pre>***"),
    (re.compile(r"(?i)\b(bearer|oauth)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (
        re.compile(
            r"(?i)(access_token|refresh_token|client_secret|password|token|api_key|secret)"
            r"(\"?\s*[:=]\s*\"?)[^\s\"'&,;}]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "<email>"),
    # masked card numbers (220220******6407, 4276 **** **** 1234): nothing left to check
    (re.compile(r"\b\d{4,6}(?:[ -]?\*){2,9}[ -]?\d{4}\b"), "<card>"),
    (_CARD, _card),
    (
        re.compile(r"(?<![\w.])\+?[78][\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)"),
        "<phone>",
    ),
)


def scrub(text: str) -> str:
    """Text with e-mails, phones, card numbers and credentials replaced by placeholders."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its scrubbed rendering."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of the record (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Emit to the current stderr."""
        self.stream = sys.stderr
        super().emit(record)


#: Where an operator sets the log level and format of every command and container.
LOG_LEVEL_VARIABLE = "ZAKAZ_LOG_LEVEL"
LOG_FORMAT_VARIABLE = "ZAKAZ_LOG_FORMAT"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")

#: The source and run a thread is working for: stamped on every record logged meanwhile.
_run: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "zakaz_run", default=None
)


@contextlib.contextmanager
def run_context(source: str, run_id: str) -> Iterator[None]:
    """Every record logged inside carries `source` and `run_id` (JSON lines show them)."""
    token = _run.set((source, run_id))
    try:
        yield
    finally:
        _run.reset(token)


class _RunStamp(logging.Filter):
    """Puts the current run's source and id on the record (None outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _run.get()
        record.source, record.run_id = current if current else (None, None)
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time (Moscow, ISO 8601), level, logger, message, run."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, MSK).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("source", "run_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["error"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def _setting(variable: str, allowed: tuple[str, ...], default: str) -> tuple[str, str | None]:
    """The variable's value (upper- or lower-cased as `allowed` is), or the default and why."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default, None
    value = raw.upper() if allowed[0].isupper() else raw.lower()
    if value in allowed:
        return value, None
    return default, f"{variable}={raw[:40]!r} is not one of {', '.join(allowed)}; using {default}"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with every record scrubbed; safe to call more than once.

    `level` is the command's own default; `ZAKAZ_LOG_LEVEL` wins over it, and
    `ZAKAZ_LOG_FORMAT=json` writes JSON lines instead of text. A wrong value is said once, as
    a warning, and the default used: logging never stops a service from starting.
    """
    chosen, level_problem = _setting(LOG_LEVEL_VARIABLE, LOG_LEVELS, level.upper())
    style, format_problem = _setting(LOG_FORMAT_VARIABLE, LOG_FORMATS, "text")
    root = logging.getLogger()
    root.setLevel(chosen)
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(_RunStamp())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    handler.setFormatter(
        JsonLines()
        if style == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    for problem in (level_problem, format_problem):
        if problem:
            logging.getLogger(__name__).warning("%s", problem)
