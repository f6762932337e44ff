"""Settings of the `gmail` source (CONTRACT §2): `GMAIL_DIR`, `GMAIL_QUERY`, `GMAIL_API_URL`,
plus client tuning; read from the environment and `secrets/.env.gmail`, built per run."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zakaz_common.errors import ConfigError
from zakaz_common.settings import load_settings

SERVICE: Final = "gmail"
"""The service name: its env file is `secrets/.env.gmail`."""

TOKEN_FILE: Final = "token.json"  # noqa: S105 - a file name
"""The installed-app token `zakaz gmail-auth` writes and every run refreshes in place."""

CLIENT_FILE: Final = "credentials.json"
"""The OAuth client ("Desktop app") downloaded from Google Cloud, read by `zakaz gmail-auth`."""

MAX_PAGE_SIZE: Final = 500
"""Gmail's upper bound of `maxResults` on `messages.list`."""

CONSENT_FIX: Final = (
    "run `zakaz gmail-auth` once on a machine with a browser to consent again (it rewrites "
    "token.json); if this recurs about every 7 days, the OAuth app's consent screen is in "
    '"Testing", whose refresh tokens Google expires after 7 days: publish it ("In production") '
    "in Google Cloud → APIs & Services → OAuth consent screen, then consent once more"
)
"""What to do when Google no longer accepts the refresh token (`invalid_grant`)."""


class GmailSettings(BaseSettings):
    """Where the OAuth files are, what to search for, and how patiently to ask."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    gmail_dir: Path = Field(default=Path("secrets/gmail"), validation_alias="GMAIL_DIR")
    query: str = Field(default="from:qtickets newer_than:7d", validation_alias="GMAIL_QUERY")
    api_url: str = Field(default="https://gmail.googleapis.com", validation_alias="GMAIL_API_URL")
    #: `maxResults` of each `messages.list` page.
    page_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE, validation_alias="GMAIL_PAGE_SIZE")
    #: Attempts per request when Gmail answers 429/5xx or a rate-limit 403 (first try included).
    retry_attempts: int = Field(default=6, ge=1, validation_alias="GMAIL_RETRY_ATTEMPTS")
    #: First backoff wait; doubles per attempt (1, 2, 4 … 16 s) unless Gmail says `Retry-After`.
    backoff_seconds: float = Field(default=1.0, ge=0, validation_alias="GMAIL_BACKOFF_SECONDS")
    #: Seconds Gmail (or its token endpoint) may stay silent on one request.
    timeout_seconds: float = Field(default=30.0, gt=0, validation_alias="GMAIL_TIMEOUT_SECONDS")
    #: Seconds to open a connection to Gmail or its token endpoint.
    connect_timeout: float = Field(
        default=5.0, gt=0, validation_alias="GMAIL_CONNECT_TIMEOUT_SECONDS"
    )

    @field_validator("api_url")
    @classmethod
    def _root_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"GMAIL_API_URL={value!r} must be an http(s) URL (a host root)")
        # The host root is wanted; accept it given with the API path too.
        return value.removesuffix("/gmail/v1")

    @field_validator("query")
    @classmethod
    def _some_query(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("GMAIL_QUERY is empty: it must select the sales reports")
        return value

    @property
    def token_path(self) -> Path:
        """`GMAIL_DIR/token.json`."""
        return self.gmail_dir.expanduser() / TOKEN_FILE

    @property
    def client_path(self) -> Path:
        """`GMAIL_DIR/credentials.json`."""
        return self.gmail_dir.expanduser() / CLIENT_FILE

    def token_file(self) -> Path:
        """The token file; a ConfigError saying how to create it when it is missing."""
        path = self.token_path
        if not path.is_file():
            raise ConfigError(
                f"{path} does not exist (GMAIL_DIR={self.gmail_dir}): put the OAuth client "
                f"({CLIENT_FILE}) there and run `zakaz gmail-auth` once to create it"
            )
        return path


def get_settings() -> GmailSettings:
    """The source's settings as the environment says now."""
    return load_settings(GmailSettings, SERVICE)
