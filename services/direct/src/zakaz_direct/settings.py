"""Settings of the `direct` source: the `DIRECT_*` variables of CONTRACT §2, plus waits and timeouts."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zakaz_common.errors import ConfigError
from zakaz_common.settings import load_settings

#: Production root of the JSON API v5; the sandbox's `/json/v5` root works the same.
DEFAULT_API_URL = "https://api.direct.yandex.com/json/v5"

_YES = {"yes", "true", "1", "on"}
_NO = {"no", "false", "0", "off"}


class DirectSettings(BaseSettings):
    """Where Yandex Direct is, whose statistics to read, and how long to wait for reports."""

    model_config = SettingsConfigDict(env_prefix="DIRECT_", extra="ignore")

    token: SecretStr | None = None
    client_login: str | None = None
    api_url: str = DEFAULT_API_URL
    #: The report's IncludeVAT, stored with every row (`YES` or `NO`).
    include_vat: str = "YES"
    #: Days before yesterday every daily run reloads: Direct filters clicks for about three days.
    lookback_days: int = Field(default=3, ge=0, le=365)
    #: Longest single wait between report polls or retries, whatever `retryIn` asks (seconds).
    max_wait_seconds: float = Field(default=120.0, ge=0)
    #: How long one run keeps polling an offline report; unset means until the run's deadline.
    report_timeout_seconds: float | None = Field(default=None, gt=0)
    #: Seconds to open a connection to Direct.
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    #: Seconds Direct may stay silent on one request (an online report is built meanwhile).
    read_timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("include_vat")
    @classmethod
    def _yes_no(cls, value: str) -> str:
        text = value.strip().lower()
        if text in _YES:
            return "YES"
        if text in _NO:
            return "NO"
        raise ValueError(f"DIRECT_INCLUDE_VAT={value!r}: use YES or NO")

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"DIRECT_API_URL={value!r} must start with http:// or https://")
        return url

    @field_validator("client_login")
    @classmethod
    def _login(cls, value: str | None) -> str | None:
        # Direct logins are case-insensitive and written with dashes or dots interchangeably;
        # the account key keeps the login as the operator wrote it, only trimmed and lower-cased.
        if value is None:
            return None
        return value.strip().lower() or None

    @property
    def vat(self) -> bool:
        """Whether spend includes VAT."""
        return self.include_vat == "YES"

    def require_credentials(self) -> tuple[str, str]:
        """The token and Client-Login, or a ConfigError naming what to set."""
        token = self.token.get_secret_value().strip() if self.token is not None else ""
        login = self.client_login or ""
        missing = [n for n, v in (("DIRECT_TOKEN", token), ("DIRECT_CLIENT_LOGIN", login)) if not v]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set: put the OAuth token of an app approved for the "
                "Direct API and the advertiser's login in secrets/.env.direct"
            )
        return token, login


def get_settings() -> DirectSettings:
    """The source's settings, built now from the environment and `secrets/.env.direct`."""
    try:
        return load_settings(DirectSettings, "direct")
    except ValueError as exc:
        # pydantic's ValidationError is a ValueError; its text names the variable, never a secret
        # (SecretStr values are not echoed), but keep only the first line of each problem.
        raise ConfigError(f"Direct settings are invalid: {exc}") from exc
