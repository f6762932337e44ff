"""Settings of the Google Sheets source (CONTRACT §2), read from the environment and
`secrets/.env.qtickets_sheets`; built per run, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zakaz_common.errors import ConfigError
from zakaz_common.settings import load_settings

SERVICE: Final = "qtickets_sheets"
"""The service name: its env file is `secrets/.env.qtickets_sheets`."""

MAX_CHUNK_ROWS: Final = 10_000
"""Rows per read of a long tab: keeps each answer well under Sheets' 2 MB / 180 s limits."""

Role = Literal["events", "inventory", "sales"]
ROLES: Final[tuple[Role, ...]] = ("events", "inventory", "sales")


class SheetsSettings(BaseSettings):
    """Where the three worksheets are, how to authenticate, and how politely to read."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    gservice_json: Path = Field(
        default=Path("secrets/google/sa.json"), validation_alias="GSERVICE_JSON"
    )
    sheet_id_events: str | None = Field(default=None, validation_alias="SHEET_ID_EVENTS")
    sheet_id_inventory: str | None = Field(default=None, validation_alias="SHEET_ID_INVENTORY")
    sheet_id_sales: str | None = Field(default=None, validation_alias="SHEET_ID_SALES")
    sheet_name_events: str = Field(default="Events", validation_alias="SHEET_NAME_EVENTS")
    sheet_name_inventory: str = Field(default="Inventory", validation_alias="SHEET_NAME_INVENTORY")
    sheet_name_sales: str = Field(default="Sales", validation_alias="SHEET_NAME_SALES")
    api_url: str = Field(default="https://sheets.googleapis.com", validation_alias="SHEETS_API_URL")
    #: UNFORMATTED_VALUE reads exact numbers and serial dates; FORMATTED_VALUE reads what the
    #: sheet shows (Russian-locale text). Both parse to the same rows.
    value_render: Literal["UNFORMATTED_VALUE", "FORMATTED_VALUE"] = Field(
        default="UNFORMATTED_VALUE", validation_alias="SHEETS_VALUE_RENDER"
    )
    #: Google allows 60 read requests a minute per user; the client never sends more.
    reads_per_minute: int = Field(default=60, ge=1, validation_alias="SHEETS_READS_PER_MINUTE")
    #: The quota's window; only tests shorten it.
    quota_window_seconds: float = Field(
        default=60.0, gt=0, validation_alias="SHEETS_QUOTA_WINDOW_SECONDS"
    )
    #: Attempts per request when Google answers 429/5xx (the first try included).
    retry_attempts: int = Field(default=7, ge=1, validation_alias="SHEETS_RETRY_ATTEMPTS")
    #: First backoff wait; doubles per attempt (1, 2, 4 … 32 s covers a quota minute).
    backoff_seconds: float = Field(default=1.0, ge=0, validation_alias="SHEETS_BACKOFF_SECONDS")
    chunk_rows: int = Field(
        default=MAX_CHUNK_ROWS, ge=1, le=MAX_CHUNK_ROWS, validation_alias="SHEETS_CHUNK_ROWS"
    )
    #: Seconds Google may stay silent on one read: a 10 000-row chunk is built before its first
    #: byte is sent, so more than the other sources' 30 s.
    timeout_seconds: float = Field(default=60.0, gt=0, validation_alias="SHEETS_TIMEOUT_SECONDS")
    #: Seconds to open a connection to Google (Sheets or the token endpoint).
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, validation_alias="SHEETS_CONNECT_TIMEOUT_SECONDS"
    )

    @field_validator("api_url")
    @classmethod
    def _root_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"SHEETS_API_URL={value!r} must be an http(s) URL")
        return value

    def tab(self, role: Role) -> tuple[str, str]:
        """The (spreadsheet id, worksheet title) of a tab; ConfigError when the id is unset."""
        spreadsheet_id = (getattr(self, f"sheet_id_{role}") or "").strip()
        if not spreadsheet_id:
            raise ConfigError(
                f"SHEET_ID_{role.upper()} is not set: put the spreadsheet id (the part of its URL "
                "after /d/) in the environment or secrets/.env.qtickets_sheets"
            )
        return spreadsheet_id, getattr(self, f"sheet_name_{role}").strip()

    def key_file(self) -> Path:
        """The service-account key file; ConfigError saying how to get one when it is missing."""
        path = self.gservice_json.expanduser()
        if not path.is_file():
            raise ConfigError(
                f"GSERVICE_JSON={path} does not exist: create a key for the service account in "
                "Google Cloud (IAM → Service accounts → Keys → JSON) and save it there"
            )
        return path


def get_settings() -> SheetsSettings:
    """The source's settings as the environment says now."""
    return load_settings(SheetsSettings, SERVICE)
