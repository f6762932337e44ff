"""Settings shared by every service: warehouse, Redis, business time zone, API token.

Each concern is its own `BaseSettings` with the env prefix the contract fixes. Settings are
built lazily (never at import time) and every service also reads `secrets/.env.<service>`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zakaz_common.errors import ConfigError

#: Directory (relative to the working directory) holding per-service env files.
SECRETS_DIR = Path("secrets")

_S = TypeVar("_S", bound=BaseSettings)


def env_files(service: str | None = None) -> tuple[Path, ...]:
    """The env files a service reads, those that exist: `secrets/.env.<service>`."""
    name = service or os.environ.get("ZAKAZ_SERVICE")
    if not name:
        return ()
    path = SECRETS_DIR / f".env.{name}"
    return (path,) if path.is_file() else ()


def load_settings(cls: type[_S], service: str | None = None) -> _S:
    """Build a settings class from the environment plus the service's env file."""
    files = env_files(service)
    kwargs: dict[str, Any] = {"_env_file": files} if files else {}
    return cls(**kwargs)


class CoreSettings(BaseSettings):
    """Where data lives, where Redis is, which time zone business dates use."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("data"), validation_alias="ZAKAZ_DATA_DIR")
    redis_url: str = Field(default="redis://localhost:6379/0", validation_alias="REDIS_URL")
    tz: str = Field(default="Europe/Moscow", validation_alias="ZAKAZ_TZ")
    api_token: SecretStr | None = Field(default=None, validation_alias="ZAKAZ_API_TOKEN")
    allow_anonymous: bool = Field(default=False, validation_alias="ZAKAZ_ALLOW_ANONYMOUS")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # A relative ZAKAZ_DATA_DIR is relative to where `zakaz` was started (CONTRACT §1).
        return value.expanduser().resolve()

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"ZAKAZ_TZ={value!r} is not a known time zone") from exc
        return value


class WarehouseSettings(BaseSettings):
    """ClickHouse connection: a DSN, or host parts, or nothing (the embedded engine)."""

    model_config = SettingsConfigDict(env_prefix="CH_", extra="ignore")

    dsn: SecretStr | None = None
    host: str | None = None
    port: int = 8123
    user: str = "default"
    password: SecretStr = SecretStr("")
    database: str = "zakaz"
    secure: bool = False
    #: Seconds to open a connection to a server (`CH_CONNECT_TIMEOUT_SECONDS`).
    connect_timeout_seconds: int = Field(default=5, ge=1)
    #: Seconds a server may stay silent on one request (`CH_SEND_RECEIVE_TIMEOUT_SECONDS`). A
    #: long query is not cut by it: the server sends progress headers more often than this.
    send_receive_timeout_seconds: int = Field(default=120, ge=1)

    @field_validator("database")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.replace("_", "").isalnum():
            raise ValueError(f"CH_DATABASE={value!r} must be letters, digits and underscores")
        return value

    def resolved_dsn(self, data_dir: Path) -> str:
        """The DSN to open: `CH_DSN`, else one built from `CH_HOST`…, else embedded chDB."""
        if self.dsn is not None and self.dsn.get_secret_value().strip():
            dsn = self.dsn.get_secret_value().strip()
            scheme = urlsplit(dsn).scheme
            if scheme not in {"http", "https", "chdb", "clickhouse", "clickhousedb"}:
                raise ConfigError(
                    f"CH_DSN has scheme {scheme!r}; use http(s)://user:pw@host:8123/db "
                    "or chdb:///path/to/warehouse"
                )
            return dsn
        if self.host:
            scheme = "https" if self.secure else "http"
            auth = quote(self.user, safe="")
            password = self.password.get_secret_value()
            if password:
                auth += ":" + quote(password, safe="")
            return f"{scheme}://{auth}@{self.host}:{self.port}/{self.database}"
        return f"chdb://{data_dir / 'warehouse'}"

    def database_for(self, dsn: str) -> str:
        """The database to use: the DSN's path for a server DSN, else `CH_DATABASE`."""
        parts = urlsplit(dsn)
        if parts.scheme in {"http", "https", "clickhouse", "clickhousedb"}:
            name = parts.path.strip("/")
            if name and (self.dsn is not None and self.dsn.get_secret_value().strip()):
                return name
        return self.database


def redact_dsn(dsn: str) -> str:
    """A DSN with its password replaced, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
