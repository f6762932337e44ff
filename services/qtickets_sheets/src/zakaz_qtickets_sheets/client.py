"""Reading the three worksheets with gspread, in as few requests as the Sheets API allows.

Per spreadsheet: one metadata read (tab titles and sizes), then every wanted tab in one
`values:batchGet`; a tab longer than `chunk_rows` rows is read in further chunks of at most that
many rows. Every request, retries included, passes a client-side limiter that keeps the run
under Google's 60 reads a minute per user; 429 and 5xx answers are retried with exponential
backoff (honouring `Retry-After`), and a quota still exhausted after the last attempt fails the
run (`TransientError`): a run never succeeds with part of a sheet.

Authentication is google-auth's service-account flow from `GSERVICE_JSON` (its `token_uri` is
honoured, so a sandbox can issue tokens); `SHEETS_API_URL` replaces Google's host in the URLs
gspread builds. Every request, the token fetch included, is bounded by the run's deadline.
Knows nothing of ClickHouse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.http_client import ParamsType
from zakaz_common.deadline import Deadline
from zakaz_common.errors import (
    AuthError,
    ConfigError,
    PermanentError,
    StructuralError,
    TransientError,
)

from zakaz_qtickets_sheets.settings import Role, SheetsSettings
from zakaz_qtickets_sheets.transport import (
    RETRYABLE,
    ReadStats,
    SheetsHTTPClient,
    TokenEndpointRequest,
    retry_after,
    shared_limiter,
)

SCOPES: Final = ("https://www.googleapis.com/auth/spreadsheets.readonly",)
"""Read-only: the source never writes to the sheet."""


@dataclass
class TabValues:
    """One worksheet's cells as the API returned them: rows of values, row 1 first."""

    role: Role
    spreadsheet_id: str
    title: str
    rows: list[list[Any]] = field(default_factory=list)


def a1_title(title: str) -> str:
    """A worksheet title quoted for A1 notation (`'Sales'`, `'Рик''s'`)."""
    return "'" + title.replace("'", "''") + "'"


class SheetsClient:
    """Reads worksheets of one or more spreadsheets with the fewest API requests."""

    def __init__(self, settings: SheetsSettings, deadline: Deadline | None = None) -> None:
        self.settings = settings
        self.deadline = deadline or Deadline.unbounded()
        self.stats = ReadStats()
        key_file = settings.key_file()
        info = _key_info(key_file)
        self.limiter = shared_limiter(
            f"{info['token_uri']} {info['client_email']}",
            settings.reads_per_minute,
            settings.quota_window_seconds,
        )
        try:
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=list(SCOPES)
            )
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"GSERVICE_JSON={key_file} is not a usable service-account key ({type(exc).__name__}): "
                "download a new JSON key of the service account from Google Cloud"
            ) from None
        token_uri = str(info["token_uri"])
        auth = TokenEndpointRequest(
            token_uri, self.deadline, connect_timeout=settings.connect_timeout_seconds
        )
        session = AuthorizedSession(credentials, auth_request=auth)  # type: ignore[no-untyped-call]
        self.http = SheetsHTTPClient(
            session,
            api_url=settings.api_url,
            limiter=self.limiter,
            attempts=settings.retry_attempts,
            backoff=settings.backoff_seconds,
            stats=self.stats,
            deadline=self.deadline,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.timeout_seconds,
        )

    def read(self, tabs: Mapping[Role, tuple[str, str]]) -> dict[Role, TabValues]:
        """Every wanted tab's values; `tabs` maps a role to (spreadsheet id, worksheet title)."""
        by_sheet: dict[str, dict[Role, str]] = {}
        for role, (spreadsheet_id, title) in tabs.items():
            by_sheet.setdefault(spreadsheet_id, {})[role] = title
        result: dict[Role, TabValues] = {}
        for spreadsheet_id, wanted in by_sheet.items():
            with self._translated(spreadsheet_id, list(wanted)):
                result.update(self._read_spreadsheet(spreadsheet_id, wanted))
        return result

    def _read_spreadsheet(
        self, spreadsheet_id: str, wanted: Mapping[Role, str]
    ) -> dict[Role, TabValues]:
        meta = self.http.fetch_sheet_metadata(spreadsheet_id)
        sizes = {
            str(s["properties"]["title"]): int(
                s["properties"].get("gridProperties", {}).get("rowCount", 0)
            )
            for s in meta.get("sheets", [])
        }
        titles = {role: _find_title(title, sizes) for role, title in wanted.items()}
        missing = [f"'{wanted[r]}' (SHEET_NAME_{r.upper()})" for r, t in titles.items() if not t]
        if missing:
            raise StructuralError(
                f"spreadsheet {spreadsheet_id} has no worksheet {', '.join(missing)}; it has "
                f"{', '.join(repr(t) for t in sizes) or 'none'}: rename the tab or set SHEET_NAME_*"
            )
        found = {role: t for role, t in titles.items() if t}
        chunk = self.settings.chunk_rows
        # Short tabs whole, long ones by their first chunk: one read for all of them.
        ranges = [
            a1_title(t) if sizes[t] <= chunk else f"{a1_title(t)}!1:{chunk}" for t in found.values()
        ]
        batch = self.http.values_batch_get(spreadsheet_id, ranges, self._params())
        answered = batch.get("valueRanges", [])
        if len(answered) != len(ranges):
            raise PermanentError(
                f"Google Sheets answered {len(answered)} ranges for the {len(ranges)} asked"
            )
        out: dict[Role, TabValues] = {}
        for (role, title), first in zip(found.items(), answered, strict=True):
            rows: list[list[Any]] = list(first.get("values", []))
            for start in range(chunk + 1, sizes[title] + 1, chunk):
                end = min(start + chunk - 1, sizes[title])
                part = self.http.values_get(
                    spreadsheet_id, f"{a1_title(title)}!{start}:{end}", self._params()
                )
                if values := part.get("values", []):
                    # Trailing empty rows of the previous chunk were not returned.
                    rows.extend([] for _ in range(start - 1 - len(rows)))
                    rows.extend(values)
            out[role] = TabValues(role, spreadsheet_id, title, rows)
        return out

    def _params(self) -> ParamsType:
        return {
            "valueRenderOption": self.settings.value_render,
            "dateTimeRenderOption": "SERIAL_NUMBER",
            "majorDimension": "ROWS",
        }

    @contextmanager
    def _translated(self, spreadsheet_id: str, roles: Sequence[Role]) -> Iterator[None]:
        """Turn gspread's, google-auth's and requests' errors into zakaz's, saying what to fix."""
        try:
            yield
        except APIError as exc:
            raise _translate(exc, spreadsheet_id, roles, self.settings.retry_attempts) from None
        except google.auth.exceptions.RefreshError as exc:
            reason = str(exc.args[0]) if exc.args else type(exc).__name__
            if getattr(exc, "retryable", False):
                raise TransientError(f"Google's token endpoint failed: {reason}") from None
            raise AuthError(
                f"Google refused the service-account key in GSERVICE_JSON ({reason}): the key "
                "was deleted or the account disabled; create a new JSON key and replace the file"
            ) from None
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(f"cannot reach Google's token endpoint: {exc}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(
                f"cannot reach Google Sheets at {self.settings.api_url} after "
                f"{self.settings.retry_attempts} attempts: {type(exc).__name__}"
            ) from None


def _key_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"GSERVICE_JSON={path} cannot be read as JSON ({type(exc).__name__}): put the "
            "service account's JSON key there"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(
            f'GSERVICE_JSON={path} is not a service-account key (its "type" is not '
            '"service_account"): download a JSON key of the service account'
        )
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise ConfigError(f"GSERVICE_JSON={path} lacks {', '.join(missing)}: download a new key")
    return info


def _find_title(title: str, sizes: Mapping[str, int]) -> str | None:
    if title in sizes:
        return title
    folded = [t for t in sizes if t.strip().casefold() == title.strip().casefold()]
    return folded[0] if len(folded) == 1 else None


def _translate(
    exc: APIError, spreadsheet_id: str, roles: Sequence[Role], attempts: int
) -> Exception:
    status = int(exc.response.status_code)
    message = str(exc.error.get("message", "")) if isinstance(exc.error, Mapping) else ""
    settings = ", ".join(f"SHEET_ID_{r.upper()}" for r in roles)
    if status == 429:
        return TransientError(
            f"Google Sheets read quota exhausted: still 429 RESOURCE_EXHAUSTED after {attempts} "
            "attempts; nothing was loaded, the next run will try again",
            retry_after=retry_after(exc),
        )
    if status in RETRYABLE:
        return TransientError(
            f"Google Sheets answered {status} after {attempts} attempts: {message}"
        )
    if status == 401:
        return AuthError(f"Google Sheets refused the access token (401): {message}")
    if status == 403:
        return AuthError(
            f"Google Sheets answered 403 for spreadsheet {spreadsheet_id} ({settings}): share it "
            "(Viewer) with the client_email of the service account in GSERVICE_JSON"
        )
    if status == 404:
        return ConfigError(f"spreadsheet {spreadsheet_id} not found: check {settings}")
    return PermanentError(f"Google Sheets answered {status}: {message}")
