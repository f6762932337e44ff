"""Table tests of the pure parts: MIME walking, tables out of HTML and CSV, sales rows, winners,
and the search of a run."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from zakaz_common.cities import CityDirectory
from zakaz_common.errors import BadValue
from zakaz_common.sales_table import parse_event_id
from zakaz_common.timeutil import MSK
from zakaz_gmail.mime import MailMessage, Part, b64url_decode, classify, decode_text, leaf_parts
from zakaz_gmail.query import in_window, message_day, search_query
from zakaz_gmail.tables import html_tables
from zakaz_gmail.transform import find_header, message_sales, winning_rows

CITIES = CityDirectory.bundled()
NBSP = "\u00a0"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RU_HEADER = "Дата;ID мероприятия;Название;Город;Продано билетов;Выручка;Комментарий"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        pytest.param(_b64("Отчёт".encode()), "Отчёт".encode(), id="unpadded"),
        pytest.param(base64.urlsafe_b64encode(b"ab").decode(), b"ab", id="padded"),
        pytest.param(_b64(b"\xfb\xff\xfe"), b"\xfb\xff\xfe", id="url_alphabet_dash_underscore"),
        pytest.param("", b"", id="empty"),
    ],
)
def test_b64url_decode(encoded: str, expected: bytes) -> None:
    assert b64url_decode(encoded) == expected


def test_b64url_decode_rejects_garbage() -> None:
    with pytest.raises(BadValue, match="base64url"):
        b64url_decode("a")


@pytest.mark.parametrize(
    ("mime", "filename", "kind"),
    [
        pytest.param("text/html", "", "html", id="html_body"),
        pytest.param("text/plain", "", "other", id="plain_body"),
        pytest.param("text/csv", "sales.csv", "csv", id="csv"),
        pytest.param("application/octet-stream", "Продажи.CSV", "csv", id="octet_stream_csv_name"),
        pytest.param("text/plain", "sales.csv", "csv", id="plain_typed_csv_name"),
        pytest.param(XLSX, "sales.xlsx", "spreadsheet", id="xlsx"),
        pytest.param("application/octet-stream", "sales.xls", "spreadsheet", id="octet_stream_xls"),
        pytest.param("image/png", "logo.png", "other", id="logo"),
        pytest.param("application/pdf", "act.pdf", "other", id="pdf"),
    ],
)
def test_classify(mime: str, filename: str, kind: str) -> None:
    assert classify(mime, filename) == kind


def _part(part_id: str, mime: str, data: bytes | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"size": len(data or b"")}
    if data is not None:
        body["data"] = _b64(data)
    if "attachment_id" in extra:
        body["attachmentId"] = extra.pop("attachment_id")
    return {"partId": part_id, "mimeType": mime, "body": body, **extra}


def test_leaf_parts_walks_nested_multipart_in_order_and_reads_charsets() -> None:
    html = "<p>Привет</p>".encode("cp1251")
    payload = {
        "partId": "",
        "mimeType": "multipart/mixed",
        "body": {"size": 0},
        "parts": [
            {
                "partId": "0",
                "mimeType": "multipart/alternative",
                "parts": [
                    _part("0.0", "text/plain", b"hi"),
                    {
                        "partId": "0.1",
                        "mimeType": "multipart/related",
                        "parts": [
                            _part(
                                "0.1.0",
                                "text/html",
                                html,
                                headers=[
                                    {
                                        "name": "content-type",
                                        "value": 'text/html; charset="windows-1251"',
                                    }
                                ],
                            ),
                            _part("0.1.1", "image/png", b"png", filename="logo.png"),
                        ],
                    },
                ],
            },
            _part("1", XLSX, None, filename="s.xlsx", attachment_id="ANGj-1"),
            {"partId": "2", "mimeType": "multipart/mixed", "parts": []},
        ],
    }

    parts = leaf_parts(payload)

    assert [(p.part_id, p.kind) for p in parts] == [
        ("0.0", "other"),
        ("0.1.0", "html"),
        ("0.1.1", "other"),
        ("1", "spreadsheet"),
    ]
    html_part = parts[1]
    assert html_part.charset == "windows-1251"
    assert decode_text(html_part.data or b"", html_part.charset) == "<p>Привет</p>"
    assert parts[3].data is None and parts[3].attachment_id == "ANGj-1"


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        pytest.param("Дата;Город".encode(), None, "Дата;Город", id="utf8"),
        pytest.param(b"\xef\xbb\xbf" + "Дата".encode(), None, "Дата", id="utf8_bom_dropped"),
        pytest.param("Дата;Город".encode("cp1251"), None, "Дата;Город", id="cp1251_detected"),
        pytest.param("Ёлки".encode("cp1251"), "utf-8", "Ёлки", id="declared_utf8_but_cp1251"),
        pytest.param("Ёлки".encode("koi8-r"), "koi8-r", "Ёлки", id="declared_koi8r"),
        pytest.param("Ёлки".encode("cp1251"), "x-unknown", "Ёлки", id="unknown_charset"),
    ],
)
def test_decode_text(data: bytes, charset: str | None, text: str) -> None:
    assert decode_text(data, charset) == text


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            [["date", "event_id", "city", "tickets_sold", "revenue"]],
            (0, {"date": 0, "event_id": 1, "city": 2, "tickets_sold": 3, "revenue": 4}),
            id="english",
        ),
        pytest.param(
            [RU_HEADER.split(";")],
            (
                0,
                {
                    "date": 0,
                    "event_id": 1,
                    "event_name": 2,
                    "city": 3,
                    "tickets_sold": 4,
                    "revenue": 5,
                },
            ),
            id="russian_with_extra_column",
        ),
        pytest.param(
            [
                ["Отчёт о продажах"],
                [],
                [" ВЫРУЧКА ", f"Продано{NBSP}билетов", "ГОРОД", "Id  Мероприятия", "дата"],
            ],
            (2, {"revenue": 0, "tickets_sold": 1, "city": 2, "event_id": 3, "date": 4}),
            id="title_rows_first_case_nbsp_any_order",
        ),
        pytest.param(
            [["Дата", "ID мероприятия", "Город", "Продано билетов"]], None, id="revenue_missing"
        ),
        pytest.param(
            [*([["x"]] * 10), ["date", "event_id", "city", "tickets_sold", "revenue"]],
            None,
            id="header_too_far_down",
        ),
        pytest.param([], None, id="empty_table"),
    ],
)
def test_find_header(rows: list[list[str]], expected: tuple[int, dict[str, int]] | None) -> None:
    assert find_header(rows) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("24080", "24080", id="plain"),
        pytest.param("24 080", "24080", id="grouped"),
        pytest.param("24080,0", "24080", id="number_with_zero_decimals"),
        pytest.param(" A-17 ", "A-17", id="text_id"),
    ],
)
def test_parse_event_id(raw: str, expected: str) -> None:
    assert parse_event_id(raw) == expected


def test_parse_event_id_refuses_blank() -> None:
    with pytest.raises(BadValue, match="empty event_id"):
        parse_event_id("  ")


MS = 1_717_400_000_000


def _message(*parts: Part, msg_id: str = "18f3a1c2b4d5e6f7") -> MailMessage:
    return MailMessage(msg_id, MS, tuple(parts))


def _html(html: str, part_id: str = "0.1") -> Part:
    return Part(part_id, "html", "text/html", "", "utf-8", html.encode(), None, len(html))


def _file(kind: str, name: str, data: bytes, mime: str = "application/octet-stream") -> Part:
    return Part("1", kind, mime, name, None, data, None, len(data))  # type: ignore[arg-type]


_TABLE = (
    "<table><tr><td><h2>Отчёт о продажах</h2>"
    "<table border=1><thead><tr><th>Дата</th><th>ID мероприятия</th><th>Название</th><th>Город</th>"
    "<th>Продано билетов</th><th>Выручка</th></tr></thead><tbody>"
    "<tr><td>02.06.2025</td><td>24080</td><td>Стендап</td><td>Питер</td><td>3</td>"
    "<td>7&nbsp;500,00&nbsp;₽</td></tr>"
    "<tr><td>02.06.2025</td><td>24080</td><td>Стендап</td><td>Питер</td><td>1</td>"
    "<td>2&nbsp;134,56&nbsp;₽</td></tr>"
    "<tr><td></td><td></td><td></td><td></td><td></td><td></td></tr>"
    "<tr><td>02.06.2025</td><td>24 081</td><td>Лекция «Ёлки»</td><td> Екатеринбург </td>"
    "<td>2</td><td>3000</td></tr>"
    "<tr><td colspan=4><b>Итого</b></td><td>6</td><td>12&nbsp;634,56&nbsp;₽</td></tr>"
    "</tbody></table></td></tr><tr><td>Ваш менеджер: +7 916 555-12-34</td></tr></table>"
)
_CSV_CP1251 = (
    f"{RU_HEADER}\r\n"
    '02.06.2025;24080;"Стендап; большой";москва ;12;30000,50;позвонить +7 903 123-45-67\r\n'
    "02.06.2025;24082;Импровизация;Казань;0;0,00;\r\n"
).encode("cp1251")
_CSV_UTF8_COMMA = (
    "\ufeffdate,event_id,city,tickets_sold,revenue\n"
    '2025-06-02,24083,Новосибирск,4,"5 200,40"\n'
    "03.06.2025,24083,Новосибирск,1,1300\n"
).encode()
_CSV_TABS = (
    "Дата\tID мероприятия\tГород\tПродано билетов\tВыручка\n02.06.2025\t24084\tНН\t2\t2000\n"
)


def _sales(message: MailMessage) -> list[tuple[Any, ...]]:
    result = message_sales(message, CITIES)
    return [
        (r["sale_date"], r["event_id"], r["event_name"], r["city"], r["tickets_sold"], r["revenue"])
        for r in result.rows
    ]


JUNE_2 = date(2025, 6, 2)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        pytest.param(
            [_html(_TABLE)],
            [
                (JUNE_2, "24080", "Стендап", "санкт-петербург", 3, Decimal("7500.00")),
                (JUNE_2, "24080", "Стендап", "санкт-петербург", 1, Decimal("2134.56")),
                (JUNE_2, "24081", "Лекция «Ёлки»", "екатеринбург", 2, Decimal("3000.00")),
            ],
            id="html_table_nested_in_layout_blank_and_totals_rows_skipped",
        ),
        pytest.param(
            [_file("csv", "sales.csv", _CSV_CP1251)],
            [
                (JUNE_2, "24080", "Стендап; большой", "москва", 12, Decimal("30000.50")),
                (JUNE_2, "24082", "Импровизация", "казань", 0, Decimal("0.00")),
            ],
            id="csv_cp1251_semicolons_decimal_commas_quoted_separator",
        ),
        pytest.param(
            [_file("csv", "s.csv", _CSV_UTF8_COMMA)],
            [
                (JUNE_2, "24083", "", "новосибирск", 4, Decimal("5200.40")),
                (date(2025, 6, 3), "24083", "", "новосибирск", 1, Decimal("1300.00")),
            ],
            id="csv_utf8_bom_commas_quoted_grouped_decimal",
        ),
        pytest.param(
            [_file("csv", "s.csv", _CSV_TABS.encode())],
            [(JUNE_2, "24084", "", "нижний новгород", 2, Decimal("2000.00"))],
            id="csv_tab_separated",
        ),
        pytest.param(
            [_html(_TABLE), _file("csv", "sales.csv", _CSV_CP1251)],
            [
                (JUNE_2, "24080", "Стендап; большой", "москва", 12, Decimal("30000.50")),
                (JUNE_2, "24082", "Импровизация", "казань", 0, Decimal("0.00")),
            ],
            id="csv_and_html_copy_read_once_from_the_csv",
        ),
        pytest.param(
            [_html("<p>Новое мероприятие</p><table><tr><td>Афиша</td></tr></table>")],
            [],
            id="announcement_without_sales_table",
        ),
    ],
)
def test_message_sales_reads_the_table(parts: list[Part], expected: list[tuple[Any, ...]]) -> None:
    assert _sales(_message(*parts)) == expected


def test_rows_are_numbered_and_stamped_with_the_message() -> None:
    result = message_sales(_message(_html(_TABLE), msg_id="abc"), CITIES)

    assert [r["row_no"] for r in result.rows] == [0, 1, 2]
    assert {r["src_msg_id"] for r in result.rows} == {"abc"}
    assert {r["source"] for r in result.rows} == {"gmail"}
    assert result.outcome == "sales" and result.skipped_rows == 2
    assert result.tables == ["HTML body, table 2"]


def test_a_bad_row_is_rejected_with_message_row_and_column_without_other_columns() -> None:
    data = (f"{RU_HEADER}\r\n02.06.2025;24080;;Москва;3;н/д;Петров +7 903 123-45-67\r\n").encode(
        "cp1251"
    )

    result = message_sales(_message(_file("csv", "sales.csv", data), msg_id="m1"), CITIES)

    assert result.rows == [] and result.outcome == "sales"
    [reject] = result.rejects
    assert reject.entity == "sales"
    assert reject.reason == "message m1, attachment sales.csv row 2: revenue: not a number: 'н/д'"
    assert isinstance(reject.raw, dict)
    assert reject.raw["src_msg_id"] == "m1" and reject.raw["revenue"] == "н/д"
    assert "Петров" not in str(reject.raw) and "903" not in str(reject.raw)


GMAIL_KEY = {"source": "gmail", "sale_date": JUNE_2, "event_id": "24080"}


def _csv_row(**cells: str) -> Part:
    row = {"date": "02.06.2025", "event_id": "24080", "event_name": "Стендап", "city": "Москва"}
    row |= {"tickets_sold": "3", "revenue": "100"} | cells
    header = ";".join(row)
    return _file("csv", "sales.csv", f"{header}\r\n{';'.join(row.values())}\r\n".encode())


@pytest.mark.parametrize(
    ("cells", "reason", "key"),
    [
        pytest.param(
            {"tickets_sold": "-5"}, "tickets_sold: cannot be negative", GMAIL_KEY, id="-5"
        ),
        pytest.param({"revenue": "−100 ₽"}, "revenue: cannot be negative", GMAIL_KEY, id="-100"),
        pytest.param(
            {"tickets_sold": "1e300"}, "tickets_sold: not a whole number", GMAIL_KEY, id="e"
        ),
        pytest.param(
            {"tickets_sold": "99999999999999999999"},
            "tickets_sold: out of range for Int64",
            GMAIL_KEY,
            id="20_nines",
        ),
        pytest.param(
            {"revenue": "9" * 100_000}, "revenue: too long for a number", GMAIL_KEY, id="100_kB"
        ),
        pytest.param(
            {"tickets_sold": "1,5"}, "tickets_sold: not a whole number", GMAIL_KEY, id="1,5"
        ),
        pytest.param(
            {"event_id": "24080\x00\x1b[31m"},
            "event_id: control character U+0000",
            {"source": "gmail", "sale_date": JUNE_2},
            id="control_chars",
        ),
        pytest.param(
            {"event_name": "Ш" * 100_000},
            "event_name: longer than 500 characters",
            GMAIL_KEY,
            id="100_000_char_name",
        ),
        pytest.param(
            {"date": "31.02.2025"},
            "date: impossible date",
            {"source": "gmail", "event_id": "24080"},
            id="bad_date",
        ),
    ],
)
def test_ugly_values_are_rejects_naming_the_field_with_key_and_facts(
    cells: dict[str, str], reason: str, key: dict[str, Any]
) -> None:
    result = message_sales(_message(_csv_row(**cells), msg_id="m1"), CITIES)

    assert result.rows == []
    [reject] = result.rejects
    assert reject.reason.startswith(f"message m1, attachment sales.csv row 2: {reason}")
    assert reject.key == key
    assert reject.facts == ("fact_qtickets_sales_daily",)
    assert len(str(reject.raw)) < 2000


def test_a_csv_cell_over_the_csv_limit_rejects_the_attachment_not_the_run() -> None:
    result = message_sales(_message(_csv_row(event_name="Ш" * 10_485_760), msg_id="m1"), CITIES)

    assert result.rows == [] and result.outcome == "rejected"
    [reject] = result.rejects
    assert reject.entity == "attachment"
    assert "it is not readable CSV (field larger than field limit" in reject.reason


@pytest.mark.parametrize(
    ("parts", "outcome", "reasons", "ignored"),
    [
        pytest.param(
            [_file("spreadsheet", "sales.xlsx", b"PK\x03\x04", XLSX)],
            "rejected",
            ["message m1: attachment 'sales.xlsx' is a spreadsheet"],
            0,
            id="xlsx_only_rejected",
        ),
        pytest.param(
            [_html(_TABLE), _file("spreadsheet", "sales.xlsx", b"PK\x03\x04", XLSX)],
            "sales",
            [],
            1,
            id="xlsx_beside_html_table_ignored",
        ),
        pytest.param(
            [_file("csv", "notes.csv", "Комментарий;Кто\r\nпривет;я\r\n".encode("cp1251"))],
            "rejected",
            ["message m1: attachment 'notes.csv' cannot be read: it has no header row with date"],
            0,
            id="csv_without_sales_header_rejected",
        ),
        pytest.param(
            [_file("csv", "empty.csv", b"\r\n")],
            "rejected",
            ["message m1: attachment 'empty.csv' cannot be read: it is empty"],
            0,
            id="empty_csv_rejected",
        ),
        pytest.param(
            [_file("other", "act.pdf", b"%PDF", "application/pdf")],
            "no_data",
            [],
            0,
            id="pdf_ignored",
        ),
    ],
)
def test_unreadable_attachments(
    parts: list[Part], outcome: str, reasons: list[str], ignored: int
) -> None:
    result = message_sales(_message(*parts, msg_id="m1"), CITIES)

    assert result.outcome == outcome
    assert len(result.rejects) == len(reasons)
    for reject, reason in zip(result.rejects, reasons, strict=True):
        assert reject.entity == "attachment" and reject.reason.startswith(reason)
        assert isinstance(reject.raw, dict) and reject.raw["src_msg_id"] == "m1"
    assert result.ignored_attachments == ignored


def test_html_tables_keep_rows_of_nested_tables_apart() -> None:
    outer, inner = html_tables(_TABLE)

    assert [len(row) for row in outer.rows] == [1, 1]
    assert outer.rows[1] == ["Ваш менеджер: +7 916 555-12-34"]
    assert inner.rows[0][0] == "Дата" and len(inner.rows) == 6
    assert inner.rows[1] == ["02.06.2025", "24080", "Стендап", "Питер", "3", "7 500,00 ₽"]
    assert inner.rows[5] == ["Итого", "6", "12 634,56 ₽"]


def _candidate(
    msg: str, ms: int, key: tuple[date, str], tickets: int, **extra: Any
) -> dict[str, Any]:
    return {
        "src_msg_id": msg,
        "internal_date_ms": ms,
        "sale_date": key[0],
        "event_id": key[1],
        "event_name": "",
        "city": "москва",
        "tickets_sold": tickets,
        "revenue": Decimal(tickets * 100),
        **extra,
    }


A, B = (JUNE_2, "24080"), (JUNE_2, "24081")


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        pytest.param(
            [_candidate("old", 1, A, 5), _candidate("new", 2, A, 3)],
            [(A, 3)],
            id="later_message_wins",
        ),
        pytest.param(
            [_candidate("new", 2, A, 3), _candidate("old", 1, A, 5)],
            [(A, 3)],
            id="order_of_candidates_does_not_matter",
        ),
        pytest.param(
            [_candidate("new", 2, A, 3), _candidate("new", 2, A, 4), _candidate("old", 1, A, 5)],
            [(A, 3), (A, 4)],
            id="every_row_of_the_winner_kept_to_add_up",
        ),
        pytest.param(
            [_candidate("aaa", 2, A, 3), _candidate("bbb", 2, A, 4)], [(A, 4)], id="tie_greater_id"
        ),
        pytest.param(
            [_candidate("new", 2, A, 3), _candidate("old", 1, B, 5)],
            [(A, 3), (B, 5)],
            id="each_key_on_its_own",
        ),
        pytest.param([], [], id="nothing"),
    ],
)
def test_winning_rows(candidates: list[dict[str, Any]], expected: list[tuple[Any, int]]) -> None:
    rows = winning_rows(candidates)

    assert [((r["sale_date"], r["event_id"]), r["tickets_sold"]) for r in rows] == expected
    assert all(r["source"] == "gmail" and "src_msg_id" not in r for r in rows)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=MSK).timestamp())


@pytest.mark.parametrize(
    ("base", "window", "expected"),
    [
        pytest.param(
            "from:qtickets newer_than:7d", None, "from:qtickets newer_than:7d", id="no_window"
        ),
        pytest.param(
            "from:qtickets newer_than:7d has:attachment",
            (date(2025, 6, 1), date(2025, 6, 3)),
            f"from:qtickets has:attachment after:{_epoch(date(2025, 6, 1)) - 1} "
            f"before:{_epoch(date(2025, 6, 4))}",
            id="window_replaces_date_terms",
        ),
        pytest.param(
            "from:qtickets AFTER:2025/01/01 -older_than:1y",
            (date(2025, 6, 1), date(2025, 6, 1)),
            f"from:qtickets after:{_epoch(date(2025, 6, 1)) - 1} before:{_epoch(date(2025, 6, 2))}",
            id="upper_case_and_negated_date_terms",
        ),
    ],
)
def test_search_query(base: str, window: tuple[date, date] | None, expected: str) -> None:
    assert search_query(base, window) == expected


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        pytest.param(datetime(2025, 6, 1, 20, 59, tzinfo=UTC), date(2025, 6, 1), id="23_59_msk"),
        pytest.param(datetime(2025, 6, 1, 21, 0, tzinfo=UTC), date(2025, 6, 2), id="midnight_msk"),
    ],
)
def test_message_day_is_moscow(moment: datetime, day: date) -> None:
    ms = int(moment.timestamp() * 1000)
    assert message_day(ms) == day
    assert in_window(ms, (day, day)) and in_window(ms, None)
    assert not in_window(ms, (date(2025, 6, 3), date(2025, 6, 4)))
