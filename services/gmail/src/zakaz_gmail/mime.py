"""The parts of a Gmail message (`format=full`): walked, classified and decoded. Pure.

Gmail returns the MIME tree as nested `MessagePart`s: `multipart/*` parts carry `parts`, leaf
parts carry `body.data` (base64url, often without padding) or, for attachments, only
`body.attachmentId` (fetched with another call). Only what the source reads is kept: HTML
bodies, and attachments with their names and types; headers (sender, recipients) are dropped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any, Final, Literal

from zakaz_common.errors import BadValue

PartKind = Literal["html", "csv", "spreadsheet", "other"]

SPREADSHEET_TYPES: Final = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel",
        "application/vnd.ms-excel.sheet.macroenabled.12",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
"""Spreadsheets a report might come as that the source does not read (only CSV and HTML)."""

SPREADSHEET_SUFFIXES: Final = (".xlsx", ".xlsm", ".xls", ".ods")

CSV_TYPES: Final = frozenset(
    {"text/csv", "text/comma-separated-values", "application/csv", "text/x-csv"}
)


def b64url_decode(data: str) -> bytes:
    """Decode Gmail's base64url (`-`, `_`, padding often dropped)."""
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadValue(f"body is not base64url: {exc}") from exc


@dataclass(frozen=True)
class Part:
    """One leaf part the source may read: what it is, and how to get its bytes."""

    part_id: str
    kind: PartKind
    mime_type: str
    filename: str
    charset: str | None
    #: The decoded body when Gmail sent it inline.
    data: bytes | None
    #: The id to fetch the body with when Gmail did not send it inline.
    attachment_id: str | None
    size: int


def _header(part: Mapping[str, Any], name: str) -> str:
    for header in part.get("headers") or []:
        if str(header.get("name", "")).lower() == name.lower():
            return str(header.get("value", ""))
    return ""


def _content_type(part: Mapping[str, Any]) -> tuple[str, str | None]:
    """The part's MIME type (lower case) and charset, from its header or its `mimeType`."""
    raw = _header(part, "Content-Type")
    if raw:
        message = Message()
        message["Content-Type"] = raw
        charset = message.get_content_charset()
        return message.get_content_type(), charset
    return str(part.get("mimeType", "")).lower(), None


def classify(mime_type: str, filename: str) -> PartKind:
    """What a leaf part is to the source: an HTML body, a CSV, a spreadsheet, or neither."""
    name = filename.lower()
    if name.endswith(".csv") or mime_type in CSV_TYPES:
        return "csv"
    if mime_type in SPREADSHEET_TYPES or name.endswith(SPREADSHEET_SUFFIXES):
        return "spreadsheet"
    if mime_type == "text/html":
        return "html"
    return "other"


def walk(payload: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every leaf part of a MIME tree, depth first, in order."""
    children = payload.get("parts") or []
    if not children:
        yield payload
        return
    for child in children:
        yield from walk(child)


def leaf_parts(payload: Mapping[str, Any]) -> list[Part]:
    """The leaf parts of a message, classified, with inline bodies decoded."""
    parts = []
    for raw in walk(payload):
        mime_type, charset = _content_type(raw)
        if mime_type.startswith("multipart/"):
            continue  # an empty multipart: nothing in it
        filename = str(raw.get("filename") or "")
        body = raw.get("body") or {}
        data = b64url_decode(str(body["data"])) if body.get("data") else None
        parts.append(
            Part(
                part_id=str(raw.get("partId", "")),
                kind=classify(mime_type, filename),
                mime_type=mime_type,
                filename=filename,
                charset=charset,
                data=data,
                attachment_id=str(body["attachmentId"]) if body.get("attachmentId") else None,
                size=int(body.get("size") or 0),
            )
        )
    return parts


def decode_text(data: bytes, charset: str | None) -> str:
    """Text in its declared charset, else UTF-8 (a BOM dropped), else Windows-1251."""
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Russian mail and Excel exports that are not UTF-8 are, in practice, cp1251.
        return data.decode("cp1251", errors="replace")


@dataclass(frozen=True)
class MailMessage:
    """A message as the source reads it: id, receipt time, and its leaf parts (no headers)."""

    msg_id: str
    #: Gmail's `internalDate`: when the message reached the mailbox, milliseconds since the epoch.
    internal_date_ms: int
    parts: tuple[Part, ...]
