"""The gspread client against the sandbox over real HTTP: reads, chunks, quota, faults, auth."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs

import google.auth.exceptions
import httpx
import pytest
from sheets_support import SPREADSHEET_ID, SheetsSandbox
from zakaz_common.errors import AuthError, ConfigError, StructuralError, TransientError
from zakaz_qtickets_sheets.client import SheetsClient
from zakaz_qtickets_sheets.settings import ROLES, SheetsSettings, get_settings
from zakaz_qtickets_sheets.transport import ReadLimiter, TokenEndpointRequest


def _read(settings: SheetsSettings | None = None) -> tuple[SheetsClient, dict[str, int]]:
    settings = settings or get_settings()
    client = SheetsClient(settings)
    values = client.read({role: settings.tab(role) for role in ROLES})
    return client, {role: len(tab.rows) for role, tab in values.items()}


def test_one_metadata_read_and_one_batch_get_for_three_tabs(sheets_env: SheetsSandbox) -> None:
    client, sizes = _read()

    log = sheets_env.log()
    assert [e["path"].rsplit("/", 1)[-1] for e in log] == [SPREADSHEET_ID, "values:batchGet"]
    query = parse_qs(log[1]["query"])
    assert query["ranges"] == ["'Events'", "'Inventory'", "'Sales'"]
    assert query["valueRenderOption"] == ["UNFORMATTED_VALUE"]
    described = sheets_env.get("sheets")["tabs"]
    assert sizes == {
        "events": described["Events"],
        "inventory": described["Inventory"],
        "sales": described["Sales"] - 1,  # the trailing empty row is not returned
    }
    assert client.stats.reads == 2


def test_long_tabs_are_read_in_chunks_of_at_most_10000_rows(sheets_env: SheetsSandbox) -> None:
    before = sheets_env.get("sheets")["tabs"]["Sales"]
    filler = [["01.01.2025", "24080", "Москва", "1", "100,00"]] * 25_000
    sheets_env.control("sheets/rows/append", {"tab": "Sales", "rows": filler})

    client, sizes = _read()

    ranges = [parse_qs(e["query"]).get("ranges") for e in sheets_env.log()]
    paths = [e["path"] for e in sheets_env.log()]
    assert ranges[1] == ["'Events'", "'Inventory'", "'Sales'!1:10000"]
    assert paths[2].endswith("/values/'Sales'!10001:20000")
    assert paths[3].endswith(f"/values/'Sales'!20001:{before + 25_000}")
    assert len(paths) == 4 == client.stats.reads
    assert sizes["sales"] == before + 25_000


def test_chunks_are_stitched_at_their_row_numbers(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stray row far below the data: its chunk starts with empty rows the API returns as [].
    sheets_env.control("sheets/cells", {"tab": "Sales", "cell": "B520", "value": "24080"})
    whole = SheetsClient(get_settings()).read({"sales": get_settings().tab("sales")})
    monkeypatch.setenv("SHEETS_CHUNK_ROWS", "150")

    client = SheetsClient(get_settings())
    chunked = client.read({"sales": get_settings().tab("sales")})

    assert len(whole["sales"].rows) == 520
    assert chunked["sales"].rows == whole["sales"].rows
    # metadata, the batch with rows 1-150, then 151-300 … 901-1000
    assert client.stats.reads == 2 + 6


def test_formatted_values_come_as_the_sheet_shows_them(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEETS_VALUE_RENDER", "FORMATTED_VALUE")
    settings = get_settings()

    rows = SheetsClient(settings).read({"inventory": settings.tab("inventory")})["inventory"].rows

    assert rows[1][:4] == ["Москва", "24080", rows[1][2], "1\u00a0200"]
    assert all(isinstance(cell, str) for row in rows for cell in row)


def test_injected_429s_are_retried_honouring_retry_after(sheets_env: SheetsSandbox) -> None:
    sheets_env.control("sheets/faults", {"rate_limit": 3, "retry_after": 0.3})
    started = time.monotonic()

    client, _ = _read()

    assert time.monotonic() - started >= 0.9
    statuses = [e["status"] for e in sheets_env.log()]
    assert statuses == [429, 429, 429, 200, 200]
    assert client.stats.throttled == 3


def test_endless_429_fails_after_the_retry_budget(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEETS_RETRY_ATTEMPTS", "4")
    sheets_env.control("sheets/faults", {"rate_limit": -1})

    with pytest.raises(TransientError, match=r"quota exhausted.*after 4 attempts"):
        _read()

    assert [e["status"] for e in sheets_env.log()] == [429] * 4


def test_server_errors_are_retried(sheets_env: SheetsSandbox) -> None:
    sheets_env.control("sheets/faults", {"server_errors": 2})

    client, _ = _read()

    assert [e["status"] for e in sheets_env.log()] == [503, 503, 200, 200]
    assert client.stats.server_errors == 2


def test_the_limiter_keeps_reads_within_the_quota(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sandbox quota: 3 reads a second. Chunks of 400 rows of three 1000-row tabs take 8 reads.
    sheets_env.control("sheets/quota", {"reads": 3, "window_seconds": 1})
    monkeypatch.setenv("SHEETS_READS_PER_MINUTE", "3")
    monkeypatch.setenv("SHEETS_QUOTA_WINDOW_SECONDS", "1")
    monkeypatch.setenv("SHEETS_CHUNK_ROWS", "400")

    client, _ = _read()

    assert [e["status"] for e in sheets_env.log()] == [200] * 8
    assert client.stats.limiter_wait_seconds >= 1.5


def test_without_the_limiter_the_sandbox_quota_answers_429(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sheets_env.control("sheets/quota", {"reads": 3, "window_seconds": 30})
    monkeypatch.setenv("SHEETS_CHUNK_ROWS", "400")
    monkeypatch.setenv("SHEETS_RETRY_ATTEMPTS", "2")

    with pytest.raises(TransientError, match="429"):
        _read()

    assert [e["status"] for e in sheets_env.log()] == [200, 200, 200, 429, 429]


def test_read_limiter_allows_max_calls_per_period() -> None:
    limiter = ReadLimiter(3, 0.4)
    started = time.monotonic()

    for _ in range(7):
        with limiter.slot():
            pass

    assert time.monotonic() - started >= 0.8
    assert limiter.waited >= 0.7


def test_an_expired_access_token_is_refreshed_mid_run(sheets_env: SheetsSandbox) -> None:
    settings = get_settings()
    client = SheetsClient(settings)
    client.read({"events": settings.tab("events")})
    sheets_env.control("google/expire-access-tokens")

    client.read({"events": settings.tab("events")})

    stats = sheets_env.get("google/stats")
    assert stats["token_requests"] == {"urn:ietf:params:oauth:grant-type:jwt-bearer": 2}


def test_unshared_sheet_is_an_auth_error_saying_what_to_do(sheets_env: SheetsSandbox) -> None:
    sheets_env.control("sheets/sharing", {"shared": False})

    with pytest.raises(AuthError, match=r"403 .*share it \(Viewer\) with the client_email"):
        _read()


def test_unknown_spreadsheet_names_the_setting(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEET_ID_SALES", "1NoSuchSheet")

    with pytest.raises(
        ConfigError, match="spreadsheet 1NoSuchSheet not found: check SHEET_ID_SALES"
    ):
        _read()


def test_missing_worksheet_names_it_and_the_setting(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEET_NAME_INVENTORY", "Остатки")

    with pytest.raises(StructuralError, match=r"no worksheet 'Остатки' \(SHEET_NAME_INVENTORY\)"):
        _read()


def test_worksheet_title_case_is_forgiven(
    sheets_env: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEET_NAME_SALES", " sales ")

    _, sizes = _read()

    assert sizes["sales"] > 100


def test_a_deleted_service_account_is_an_auth_error(sheets_env: SheetsSandbox) -> None:
    email = "qtickets-sheets@zakaz-etl-demo.iam.gserviceaccount.com"
    httpx.delete(
        f"{sheets_env.base_url}/_sandbox/google/service-accounts/{email}"
    ).raise_for_status()

    with pytest.raises(AuthError, match="invalid_grant: Invalid grant: account not found"):
        _read()


def test_a_key_file_that_is_not_a_service_account_key_is_a_config_error(
    sheets_env: SheetsSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "token.json"
    bogus.write_text('{"token": "ya29.x", "refresh_token": "1//0g"}')
    monkeypatch.setenv("GSERVICE_JSON", str(bogus))

    with pytest.raises(ConfigError, match="is not a service-account key"):
        _read()


def test_missing_key_file_and_unset_ids_say_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSERVICE_JSON", "/nonexistent/sa.json")
    monkeypatch.setenv("SHEET_ID_SALES", "x")

    with pytest.raises(ConfigError, match=r"GSERVICE_JSON=/nonexistent/sa.json does not exist"):
        SheetsClient(get_settings())
    with pytest.raises(ConfigError, match="SHEET_ID_EVENTS is not set"):
        get_settings().tab("events")


def test_google_auth_may_reach_only_the_token_uri() -> None:
    request = TokenEndpointRequest("http://127.0.0.1:9/token")

    with pytest.raises(google.auth.exceptions.TransportError, match="only to the key's token_uri"):
        request(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/x/allowedLocations"
        )
