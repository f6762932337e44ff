"""The Sheets API sandbox over plain HTTP: shapes, render options, ranges, errors, quota."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sheets_support import SPREADSHEET_ID, SheetsSandbox
from zakaz_sandbox.google_oauth import SHEETS_READONLY, register_refresh_token

NBSP = "\u00a0"


@pytest.fixture
def api(sandbox: SheetsSandbox) -> httpx.Client:
    """An HTTP client of the Sheets API with a valid read-only token."""
    grant = register_refresh_token(
        sandbox.app, scopes=[SHEETS_READONLY], account="analyst@example-events.ru"
    )
    token = httpx.post(
        f"{sandbox.base_url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": grant.client_id,
            "client_secret": grant.client_secret,
            "refresh_token": grant.refresh_token,
        },
    ).json()["access_token"]
    return httpx.Client(
        base_url=f"{sandbox.base_url}/v4/spreadsheets/{SPREADSHEET_ID}",
        headers={"Authorization": f"Bearer {token}"},
    )


def _metadata(api: httpx.Client) -> httpx.Response:
    return api.get(str(api.base_url).rstrip("/"), params={"includeGridData": "false"})


def _values(api: httpx.Client, a1: str, **params: str) -> dict[str, Any]:
    answer = api.get(f"/values/{a1}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_metadata_lists_the_tabs_with_their_grids(api: httpx.Client) -> None:
    meta = _metadata(api).json()

    assert meta["spreadsheetId"] == SPREADSHEET_ID
    assert meta["properties"]["locale"] == "ru_RU"
    assert meta["properties"]["timeZone"] == "Europe/Moscow"
    tabs = [s["properties"] for s in meta["sheets"]]
    assert [t["title"] for t in tabs] == ["Events", "Inventory", "Sales"]
    assert all(t["gridProperties"]["rowCount"] == 1000 for t in tabs)
    assert tabs[2]["gridProperties"]["columnCount"] == 26


def test_formatted_values_are_russian_locale_text_with_ragged_and_empty_rows(
    api: httpx.Client,
) -> None:
    body = _values(api, "Sales")

    assert body["range"] == "Sales!A1:Z1000"
    rows = body["values"]
    assert rows[0] == [
        "Дата",
        "ID мероприятия",
        "Город",
        "Продано билетов",
        "Выручка",
        "Название",
        "Комментарий",
    ]
    money = [r[4] for r in rows[1:] if len(r) > 4 and r[4].endswith(f"{NBSP}₽")]
    assert money and all("," in m for m in money)
    assert any(len(r) == 5 for r in rows), "rows without trailing cells are shorter"
    assert [] in rows[1:], "an empty row in the middle comes back as []"
    assert any(r and r[0].count(".") == 2 and len(r[0]) == 10 for r in rows[1:])


def test_unformatted_values_are_numbers_and_serial_dates(api: httpx.Client) -> None:
    rows = _values(api, "'Inventory'!A1:E3", valueRenderOption="UNFORMATTED_VALUE")["values"]

    assert rows[0] == ["City", "event_id", "Event_Date", "tickets_total", "Tickets_Left"]
    assert isinstance(rows[1][1], int) and isinstance(rows[1][2], int) and rows[1][2] > 45000
    assert isinstance(rows[1][3], int)


def test_date_cells_as_formatted_strings_on_request(api: httpx.Client) -> None:
    serial = _values(api, "Events!C2", valueRenderOption="UNFORMATTED_VALUE")["values"][0][0]
    text = _values(
        api,
        "Events!C2",
        valueRenderOption="UNFORMATTED_VALUE",
        dateTimeRenderOption="FORMATTED_STRING",
    )["values"][0][0]

    assert isinstance(serial, int)
    assert isinstance(text, str) and text.count(".") == 2


def test_columns_major_dimension(api: httpx.Client) -> None:
    columns = _values(api, "Events!A1:B3", majorDimension="COLUMNS")["values"]

    assert columns[0][0] == " ID мероприятия " and columns[1][0] == "Название"


def test_an_empty_range_has_no_values_key(api: httpx.Client) -> None:
    body = _values(api, "'Sales'!A900:C950")

    assert "values" not in body
    assert body["range"] == "Sales!A900:C950"


def test_batch_get_answers_ranges_in_order(api: httpx.Client) -> None:
    answer = api.get(
        "/values:batchGet", params=[("ranges", "Events!A1"), ("ranges", "'Sales'!1:2")]
    ).json()

    assert answer["spreadsheetId"] == SPREADSHEET_ID
    assert [v["values"][0][0] for v in answer["valueRanges"]] == [" ID мероприятия ", "Дата"]
    assert len(answer["valueRanges"][1]["values"]) == 2


@pytest.mark.parametrize(
    ("path", "status", "google_status"),
    [
        pytest.param("/values/Nowhere!A1", 400, "INVALID_ARGUMENT", id="unknown_tab"),
        pytest.param("/values/Sales!A1:B2:C3", 400, "INVALID_ARGUMENT", id="unparsable_range"),
        pytest.param("/values/Sales!A5000:B5001", 400, "INVALID_ARGUMENT", id="beyond_grid"),
        pytest.param(
            "/values/Sales?valueRenderOption=PRETTY", 400, "INVALID_ARGUMENT", id="bad_render"
        ),
    ],
)
def test_errors_are_googles(api: httpx.Client, path: str, status: int, google_status: str) -> None:
    answer = api.get(path)

    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == status and error["status"] == google_status and error["message"]


def test_unknown_spreadsheet_is_not_found(api: httpx.Client, sandbox: SheetsSandbox) -> None:
    answer = httpx.get(f"{sandbox.base_url}/v4/spreadsheets/1nope", headers=api.headers)

    assert (answer.status_code, answer.json()["error"]["status"]) == (404, "NOT_FOUND")


def test_the_61st_read_in_a_minute_is_refused(api: httpx.Client) -> None:
    answers = [api.get("/values/Events!A1").status_code for _ in range(61)]

    assert answers == [200] * 60 + [429]
    error = _metadata(api).json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert "Read requests per minute per user" in error["message"]


def test_control_edits_show_in_the_next_read(api: httpx.Client, sandbox: SheetsSandbox) -> None:
    sandbox.control("sheets/cells", {"tab": "Events", "cell": "B2", "value": "Новое имя"})
    sandbox.control("sheets/rows/delete", {"tab": "Events", "rows": [3]})
    sandbox.control("sheets/headers/remove", {"tab": "Events", "header": "город"})

    rows = _values(api, "Events!A1:D3")["values"]

    assert rows[0][3:] == [] and rows[1][1] == "Новое имя"
    assert rows[2][0] == "24082"
    sandbox.control("sheets/reset")
    assert _values(api, "Events!B2")["values"] == [["Стендап: Большой сольный концерт"]]
