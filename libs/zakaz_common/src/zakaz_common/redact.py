"""Keeping secrets and PII out of logs, errors, metrics and tables.

`scrub` removes what looks like an e-mail, a phone number, a card number, a bearer token or a
password in a URL from free text; `RedactingFilter` applies it to every log record.
"""

from __future__ import annotations

import logging
import re
import sys

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
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
    # masked or full card numbers: 220220******6407, 4276 0000 0000 1234
    (re.compile(r"\b\d{4,6}[\d*]{2,8}\d{4}\b"), "<card>"),
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


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with every record scrubbed; safe to call more than once."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
