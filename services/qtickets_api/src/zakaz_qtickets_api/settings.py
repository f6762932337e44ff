"""Settings of the `qtickets_api` source (CONTRACT §2): base URL, token, default window, timeouts."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zakaz_common.errors import ConfigError
from zakaz_common.settings import load_settings

#: The service name whose `secrets/.env.<service>` is read.
SERVICE: Final = "qtickets_api"


class QticketsSettings(BaseSettings):
    """Where the QTickets REST API v1 is, the organiser's token, how far back a run re-reads."""

    model_config = SettingsConfigDict(extra="ignore")

    base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("QTICKETS_BASE_URL", "QTICKETS_API_BASE_URL")
    )
    token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("QTICKETS_TOKEN", "QTICKETS_API_TOKEN")
    )
    days_back: int = Field(default=30, ge=1, le=3660, validation_alias="QTICKETS_DAYS_BACK")
    #: Seconds QTickets may stay silent on one request.
    timeout_seconds: float = Field(default=30.0, gt=0, validation_alias="QTICKETS_TIMEOUT_SECONDS")
    #: Seconds to open a connection to QTickets.
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, validation_alias="QTICKETS_CONNECT_TIMEOUT_SECONDS"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http(s) URL of the REST API root, ending in /api/rest/v1")
        return url

    def credentials(self) -> tuple[str, str]:
        """The base URL and token, or a ConfigError saying which to set."""
        if self.base_url is None:
            raise ConfigError(
                "QTICKETS_BASE_URL is not set: set it to the REST API root, e.g. "
                "https://qtickets.ru/api/rest/v1 (the sandbox: http://127.0.0.1:PORT/api/rest/v1)"
            )
        token = self.token.get_secret_value().strip() if self.token is not None else ""
        if not token:
            raise ConfigError(
                "QTICKETS_TOKEN is not set: generate an API token in the QTickets seller cabinet "
                "(Настройки → Основное) and put it in secrets/.env.qtickets_api"
            )
        return self.base_url, token


def get_settings() -> QticketsSettings:
    """The settings as the environment and `secrets/.env.qtickets_api` say now."""
    try:
        return load_settings(QticketsSettings, SERVICE)
    except ValidationError as exc:
        # Name the variable and the problem, never the value (it may be a token).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"QTickets settings are invalid: {problems}") from None
