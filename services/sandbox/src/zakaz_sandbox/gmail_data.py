"""The mailbox the Gmail sandbox serves: QTickets sales reports as real mail programs send them.

`build_mailbox(today)` draws daily sales of the season (`season.py`) and mails them the way a
ticketing system does: an HTML report (a sales table nested in a layout table, `1 800,00 ₽`
with no-break spaces, a totals row, a logo, `multipart/mixed` → `alternative` → `related`), a
cp1251 CSV attachment (`;`-separated, decimal commas, CRLF, an extra column where people type
phone numbers), an Excel attachment nobody here reads, a corrected report that supersedes an
earlier one, an announcement without sales, a lookalike report from another sender, and a
report older than a week. `Mail.truth` is what a correct reader concludes from each message.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from zakaz_sandbox.season import Show, reference_day, rng, season

MSK: Final = ZoneInfo("Europe/Moscow")
NBSP: Final = "\u00a0"

QTICKETS: Final = "Qtickets <reports@qtickets.ru>"
"""The sender of the reports (`from:qtickets` matches it)."""

RECIPIENT: Final = "Отдел продаж <otchety@example-events.ru>"

MANAGER: Final = "Анна Смирнова, +7 916 555-12-34, anna.smirnova@qtickets.ru"
"""A personal signature in the reports' footer: PII that must never land anywhere."""

BUYER_NOTE: Final = "перезвонить покупателю Петрову: +7 903 123-45-67, petrov.ivan@mail.ru"
"""What a cashier typed into the CSV's comment column: PII that must never land anywhere."""

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Kind = Literal["html", "csv", "xlsx", "no_data", "foreign"]

DAILY_REPORT_DAYS: Final = 10
"""Daily reports cover the last ten days; the reports of even days back come as CSV."""

OLD_REPORT_DAYS_BACK: Final = 12
"""One more HTML report, older than `newer_than:7d` reaches."""


@dataclass(frozen=True)
class Line:
    """One line of a report: a show's sales of one day (one sales channel of it)."""

    sale_date: date
    show: Show
    tickets: int
    revenue: Decimal
    city_text: str
    channel: str = "онлайн"


@dataclass
class Mail:
    """One message: what Gmail serves of it, and what a correct reader concludes from it."""

    msg_id: str
    internal_ms: int
    sender: str
    subject: str
    snippet: str
    kind: Kind
    payload: dict[str, Any]
    attachments: dict[str, bytes] = field(default_factory=dict)
    #: {(sale_date, event_id): (tickets, revenue, event_name, canonical city)} of the message.
    truth: dict[tuple[date, str], tuple[int, Decimal, str, str]] = field(default_factory=dict)
    #: Rows of the message a reader must reject.
    bad_rows: int = 0
    #: Whether a reader gets sales from it (False: an Excel-only or announcement message).
    readable: bool = True

    @property
    def has_attachment(self) -> bool:
        """Whether a part has a file name."""
        return any(p.get("filename") for p in _leaves(self.payload))

    @property
    def filenames(self) -> list[str]:
        """The file names of its parts."""
        return [str(p["filename"]) for p in _leaves(self.payload) if p.get("filename")]


def _leaves(part: dict[str, Any]) -> list[dict[str, Any]]:
    if not part.get("parts"):
        return [part]
    return [leaf for child in part["parts"] for leaf in _leaves(child)]


def b64url(data: bytes) -> str:
    """Gmail's base64url, padding dropped (clients must pad before decoding)."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def rub(amount: Decimal, *, grouped: bool = True, sign: bool = True) -> str:
    """Money as a Russian report prints it: `12 600,50 ₽` (no-break spaces) or `12600,50`."""
    text = f"{amount:,.2f}" if grouped else f"{amount:.2f}"
    text = text.replace(",", NBSP).replace(".", ",")
    return f"{text}{NBSP}₽" if sign else text


def day_lines(show_list: list[Show], day: date, salt: str, today: date | None) -> list[Line]:
    """The sales of one day: most shows still on sale sell something; kopecks from fees."""
    rand = rng(f"gmail:{salt}:{day.isoformat()}", today)
    lines = []
    for show in show_list:
        if show.show_date < day or rand.random() < 0.2:
            continue
        tickets = rand.randint(1, 24)
        factor = Decimal(rand.choice(["1", "1", "0.9", "0.85", "1.035"]))
        revenue = (show.base_price * factor * tickets).quantize(Decimal("0.01"), ROUND_HALF_UP)
        lines.append(Line(day, show, tickets, revenue, show.city_display))
    return lines


def _truth(lines: list[Line]) -> dict[tuple[date, str], tuple[int, Decimal, str, str]]:
    out: dict[tuple[date, str], tuple[int, Decimal, str, str]] = {}
    for line in lines:
        key = (line.sale_date, str(line.show.event_id))
        tickets, revenue, _, _ = out.get(key, (0, Decimal("0.00"), "", ""))
        out[key] = (tickets + line.tickets, revenue + line.revenue, line.show.name, line.show.city)
    return out


def html_report(day: date, lines: list[Line], *, title: str = "Отчёт о продажах") -> str:
    """The HTML body: a layout table around the sales table, a totals row, a signature."""
    head = (
        "<tr><th>Дата</th><th>ID мероприятия</th><th>Название</th><th>Город</th>"
        "<th>Канал</th><th>Продано билетов</th><th>Выручка</th></tr>"
    )
    body = "".join(
        f"<tr><td>{line.sale_date:%d.%m.%Y}</td><td>{line.show.event_id}</td>"
        f"<td>{line.show.name}</td><td>{line.city_text}</td><td>{line.channel}</td>"
        f"<td>{line.tickets}</td><td>{rub(line.revenue).replace(NBSP, '&nbsp;')}</td></tr>"
        for line in lines
    )
    total = sum((line.revenue for line in lines), Decimal("0.00"))
    tickets = sum(line.tickets for line in lines)
    totals = (
        f'<tr><td colspan="5"><b>Итого</b></td><td>{tickets}</td>'
        f"<td>{rub(total).replace(NBSP, '&nbsp;')}</td></tr>"
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        '<table width="100%" cellpadding="0"><tr><td><img src="cid:logo@qtickets" alt="Qtickets">'
        f"</td></tr><tr><td><h2>{title} за {day:%d.%m.%Y}</h2>"
        f'<table border="1" cellspacing="0"><thead>{head}</thead><tbody>{body}{totals}</tbody>'
        f"</table></td></tr><tr><td><p>Ваш менеджер: {MANAGER}</p></td></tr></table></body></html>"
    )


def csv_report(lines: list[Line], *, bad_row: bool = False, note_row: int | None = None) -> bytes:
    """The CSV attachment: cp1251, `;`, decimal commas, CRLF, Russian headers."""
    rows = ["Дата;ID мероприятия;Название;Город;Продано билетов;Выручка;Комментарий"]
    for index, line in enumerate(lines):
        note = BUYER_NOTE if index == note_row else ""
        rows.append(
            f'{line.sale_date:%d.%m.%Y};{line.show.event_id};"{line.show.name}";'
            f"{line.city_text};{line.tickets};{rub(line.revenue, grouped=False, sign=False)};{note}"
        )
    if bad_row and lines:
        first = lines[0]
        rows.append(f"{first.sale_date:%d.%m.%Y};{first.show.event_id};;{first.city_text};3;н/д;")
    return ("\r\n".join(rows) + "\r\n").encode("cp1251")


def xlsx_report(lines: list[Line]) -> bytes:
    """A small but valid .xlsx workbook of the same table (inline strings)."""

    def cell(ref: str, value: object) -> str:
        if isinstance(value, int | Decimal):
            return f'<c r="{ref}"><v>{value}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'

    header: list[object] = ["Дата", "ID мероприятия", "Город", "Продано билетов", "Выручка"]
    table: list[list[object]] = [header] + [
        [f"{x.sale_date:%d.%m.%Y}", x.show.event_id, x.city_text, x.tickets, x.revenue]
        for x in lines
    ]
    sheet_rows = "".join(
        f'<row r="{r + 1}">'
        + "".join(cell(f"{chr(65 + c)}{r + 1}", v) for c, v in enumerate(row))
        + "</row>"
        for r, row in enumerate(table)
    )
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006"
    office = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    files = {
        "[Content_Types].xml": f'<Types xmlns="{pkg}/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        f'ContentType="{office}.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        f'ContentType="{office}.worksheet+xml"/>'
        "</Types>",
        "_rels/.rels": f'<Relationships xmlns="{pkg}/relationships"><Relationship Id="rId1" '
        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook {ns} xmlns:r="{rel}"><sheets>'
        '<sheet name="Продажи" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{pkg}/relationships">'
        f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>",
        "xl/worksheets/sheet1.xml": f"<worksheet {ns}><sheetData>{sheet_rows}</sheetData></worksheet>",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + text)
    return buffer.getvalue()


def _opaque(*parts: object, length: int = 16) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:length]


class _Builder:
    """Builds one message's MIME tree as Gmail serves it (`format=full`)."""

    def __init__(self, msg_id: str) -> None:
        self.msg_id = msg_id
        self.attachments: dict[str, bytes] = {}

    def text(self, part_id: str, mime: str, text: str, charset: str = "utf-8") -> dict[str, Any]:
        data = text.encode(charset)
        return {
            "partId": part_id,
            "mimeType": mime,
            "filename": "",
            "headers": [
                {"name": "Content-Type", "value": f'{mime}; charset="{charset}"'},
                {"name": "Content-Transfer-Encoding", "value": "quoted-printable"},
            ],
            "body": {"size": len(data), "data": b64url(data)},
        }

    def file(
        self,
        part_id: str,
        mime: str,
        filename: str,
        data: bytes,
        *,
        inline: bool = False,
        content_type: str | None = None,
        disposition: str = "attachment",
    ) -> dict[str, Any]:
        headers = [
            {"name": "Content-Type", "value": content_type or f'{mime}; name="{filename}"'},
            {"name": "Content-Disposition", "value": f'{disposition}; filename="{filename}"'},
            {"name": "Content-Transfer-Encoding", "value": "base64"},
        ]
        body: dict[str, Any] = {"size": len(data)}
        if inline:
            body["data"] = b64url(data)
        else:
            attachment_id = "ANGjdJ" + b64url(
                hashlib.sha512(f"{self.msg_id}:{part_id}".encode()).digest()
            )
            self.attachments[attachment_id] = data
            body["attachmentId"] = attachment_id
        return {
            "partId": part_id,
            "mimeType": mime,
            "filename": filename,
            "headers": headers,
            "body": body,
        }

    @staticmethod
    def multi(part_id: str, mime: str, children: list[dict[str, Any]]) -> dict[str, Any]:
        boundary = _opaque(part_id, mime, len(children), length=28)
        return {
            "partId": part_id,
            "mimeType": mime,
            "filename": "",
            "headers": [{"name": "Content-Type", "value": f'{mime}; boundary="{boundary}"'}],
            "body": {"size": 0},
            "parts": children,
        }


_LOGO: Final = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _headers(sender: str, subject: str, received: datetime, msg_id: str) -> list[dict[str, str]]:
    return [
        {"name": "Delivered-To", "value": "otchety@example-events.ru"},
        {"name": "From", "value": sender},
        {"name": "To", "value": RECIPIENT},
        {"name": "Subject", "value": subject},
        {"name": "Date", "value": received.strftime("%a, %d %b %Y %H:%M:%S %z")},
        {"name": "Message-ID", "value": f"<{msg_id}@mail.qtickets.ru>"},
        {"name": "MIME-Version", "value": "1.0"},
    ]


def make_mail(
    *,
    key: str,
    kind: Kind,
    day: date,
    lines: list[Line],
    received: datetime,
    sender: str = QTICKETS,
    subject: str | None = None,
    csv_inline: bool = False,
    bad_row: bool = False,
) -> Mail:
    """One message of a kind, for the sales `lines` of `day`, received at `received`."""
    msg_id = _opaque("gmail", key, received.isoformat())
    build = _Builder(msg_id)
    subject = subject or f"Отчёт о продажах за {day:%d.%m.%Y}"
    plain = f"Отчёт о продажах за {day:%d.%m.%Y}. Ваш менеджер: {MANAGER}"
    readable = kind in ("html", "csv", "foreign")
    if kind == "html":
        html = html_report(day, lines, title=subject.split(" за ")[0])
        related = build.multi(
            "0.1",
            "multipart/related",
            [
                build.text("0.1.0", "text/html", html),
                build.file(
                    "0.1.1", "image/png", "logo.png", _LOGO, inline=True, disposition="inline"
                ),
            ],
        )
        alternative = build.multi(
            "0", "multipart/alternative", [build.text("0.0", "text/plain", plain), related]
        )
        payload = build.multi("", "multipart/mixed", [alternative])
    elif kind in ("csv", "foreign"):
        data = csv_report(lines, bad_row=bad_row, note_row=0)
        note = "<p>Отчёт о продажах во вложении.</p>"
        alternative = build.multi(
            "0",
            "multipart/alternative",
            [build.text("0.0", "text/plain", plain), build.text("0.1", "text/html", note)],
        )
        name = f"sales_{day.isoformat()}.csv"
        attachment = (
            build.file(
                "1",
                "text/csv",
                name,
                data,
                inline=True,
                content_type=f'text/csv; charset="windows-1251"; name="{name}"',
            )
            if csv_inline
            else build.file("1", "application/octet-stream", name, data)
        )
        payload = build.multi("", "multipart/mixed", [alternative, attachment])
    elif kind == "xlsx":
        payload = build.multi(
            "",
            "multipart/mixed",
            [
                build.text("0", "text/plain", plain),
                build.file("1", XLSX, f"sales_{day.isoformat()}.xlsx", xlsx_report(lines)),
            ],
        )
    else:
        html = (
            "<html><body><table><tr><td><h1>Новое мероприятие опубликовано</h1></td></tr>"
            "<tr><td>Продажа билетов открыта. Статистика появится в ежедневном отчёте.</td></tr>"
            f"</table><p>{MANAGER}</p></body></html>"
        )
        payload = build.multi(
            "",
            "multipart/alternative",
            [build.text("0", "text/plain", plain), build.text("1", "text/html", html)],
        )
    payload["headers"] = _headers(sender, subject, received, msg_id)
    return Mail(
        msg_id=msg_id,
        internal_ms=int(received.timestamp() * 1000),
        sender=sender,
        subject=subject,
        snippet=plain[:100],
        kind=kind,
        payload=payload,
        attachments=build.attachments,
        truth=_truth(lines) if readable else {},
        bad_rows=1 if bad_row else 0,
        readable=readable and bool(lines),
    )


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), MSK)


def _as_html_lines(lines: list[Line]) -> list[Line]:
    """The first show's sales split in two channels (rows of one key add up within a report),
    and St Petersburg written the way people write it."""
    out = []
    for index, x in enumerate(lines):
        city = "Питер" if x.show.city == "санкт-петербург" else x.city_text
        split = x.tickets // 2 if index == 0 else 0
        if split:
            cut = (x.revenue * split / x.tickets).quantize(Decimal("0.01"), ROUND_HALF_UP)
            out.append(Line(x.sale_date, x.show, x.tickets - split, x.revenue - cut, city))
            out.append(Line(x.sale_date, x.show, split, cut, city, channel="касса"))
        else:
            out.append(Line(x.sale_date, x.show, x.tickets, x.revenue, city, x.channel))
    return out


def build_mailbox(today: date | None = None) -> list[Mail]:
    """Every message of the sandbox's mailbox, newest first."""
    shows = season(today)
    ref = reference_day(today)
    mails: list[Mail] = []
    for back in range(1, DAILY_REPORT_DAYS + 1):
        day = ref - timedelta(days=back)
        lines = day_lines(shows, day, "daily", today)
        kind: Kind = "csv" if back % 2 == 0 else "html"
        if kind == "html":
            lines = _as_html_lines(lines)
        mails.append(
            make_mail(
                key=f"daily:{back}",
                kind=kind,
                day=day,
                lines=lines,
                received=_at(day, 23, 50),
                csv_inline=back == 4,
                bad_row=back == 6,
            )
        )
    # A corrected report for two days back, sent the next day: refunds lowered one line.
    day = ref - timedelta(days=2)
    revised = day_lines(shows, day, "daily", today)
    if revised:
        x = revised[0]
        refunded = min(2, x.tickets)
        per = (x.revenue / x.tickets).quantize(Decimal("0.01"))
        revised[0] = Line(
            day, x.show, x.tickets - refunded, x.revenue - per * refunded, x.city_text
        )
    mails.append(
        make_mail(
            key="correction",
            kind="html",
            day=day,
            lines=revised,
            received=_at(ref - timedelta(days=1), 12, 0),
            subject=f"Исправленный отчёт о продажах за {day:%d.%m.%Y}",
        )
    )
    day = ref - timedelta(days=3)
    mails.append(
        make_mail(
            key="excel",
            kind="xlsx",
            day=day,
            lines=day_lines(shows, day, "daily", today),
            received=_at(day, 23, 55),
            subject=f"Отчёт о продажах (Excel) за {day:%d.%m.%Y}",
        )
    )
    day = ref - timedelta(days=5)
    mails.append(
        make_mail(
            key="announcement",
            kind="no_data",
            day=day,
            lines=[],
            received=_at(day, 10, 0),
            subject="Qtickets: новое мероприятие опубликовано",
        )
    )
    day = ref - timedelta(days=1)
    mails.append(
        make_mail(
            key="accounting",
            kind="foreign",
            day=day,
            lines=day_lines(shows, day, "accounting", today),
            received=_at(day, 18, 30),
            sender="Бухгалтерия <buh@example-events.ru>",
            subject=f"Сверка продаж за {day:%d.%m.%Y}",
        )
    )
    day = ref - timedelta(days=OLD_REPORT_DAYS_BACK)
    mails.append(
        make_mail(
            key="old",
            kind="html",
            day=day,
            lines=day_lines(shows, day, "daily", today),
            received=_at(day, 23, 50),
        )
    )
    return sorted(mails, key=lambda m: (m.internal_ms, m.msg_id), reverse=True)
