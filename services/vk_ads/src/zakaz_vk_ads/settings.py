"""Settings of the `vk_ads` source: the `VK_*` variables of CONTRACT §2, plus client tuning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zakaz_common.errors import ConfigError
from zakaz_common.settings import load_settings

#: The `account` value of rows loaded with the app's own credentials or with `VK_TOKEN`: the
#: same label for both, so switching between them never counts one cabinet's spend twice.
OWN_ACCOUNT = "own"

Grant = Literal["token", "client_credentials", "agency_client_credentials"]


@dataclass(frozen=True)
class AccountSpec:
    """One VK Ads account to load: its `account` label and how its token is obtained."""

    label: str
    grant: Grant
    #: The agency client's username (for `agency_client_credentials`), else "".
    username: str = ""


class VkAdsSettings(BaseSettings):
    """VK Ads API v2 credentials, base URL, lookback, and HTTP tuning."""

    model_config = SettingsConfigDict(env_prefix="VK_", extra="ignore")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: Comma list of agency client usernames; each is loaded as its own account.
    agency_clients: str = ""
    #: A pre-issued access token, used as is (never refreshed) when there are no credentials.
    token: SecretStr | None = None
    api_url: str = "https://ads.vk.com"
    lookback_days: int = Field(default=3, ge=0, le=366)
    #: First back-off wait after a 429/5xx, doubled per attempt (tests set it tiny).
    retry_wait_seconds: float = Field(default=1.0, ge=0)
    #: Attempts per request before a transient failure fails the run (RQ retries it later).
    max_attempts: int = Field(default=6, ge=1)
    #: Seconds VK may stay silent on one request.
    timeout_seconds: float = Field(default=30.0, gt=0)
    #: Seconds to open a connection to VK.
    connect_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"VK_API_URL={value!r} must be an http(s) URL such as https://ads.vk.com"
            )
        # The API lives under /api/v2 of the host root; accept the root given either way.
        return value.removesuffix("/api/v2").removesuffix("/api")

    @property
    def agency_client_names(self) -> list[str]:
        """The usernames of `VK_AGENCY_CLIENTS`, trimmed, without blanks or repeats."""
        names = [n.strip() for n in self.agency_clients.split(",")]
        return list(dict.fromkeys(n for n in names if n))

    def has_credentials(self) -> bool:
        """Whether both `VK_CLIENT_ID` and `VK_CLIENT_SECRET` are set."""
        return bool(
            self.client_id
            and self.client_id.strip()
            and self.client_secret is not None
            and self.client_secret.get_secret_value().strip()
        )

    def credentials(self) -> tuple[str, str]:
        """`(VK_CLIENT_ID, VK_CLIENT_SECRET)`, or a ConfigError when either is missing."""
        if not self.has_credentials() or self.client_id is None or self.client_secret is None:
            raise ConfigError(
                "set VK_CLIENT_ID and VK_CLIENT_SECRET (ads.vk.com → Настройки → API)"
            )
        return self.client_id.strip(), self.client_secret.get_secret_value().strip()

    def static_token(self) -> str:
        """`VK_TOKEN`, or a ConfigError when it is not set."""
        value = self.token.get_secret_value().strip() if self.token is not None else ""
        if not value:
            raise ConfigError("VK_TOKEN is not set")
        return value

    def accounts(self) -> list[AccountSpec]:
        """The accounts a run loads, or a ConfigError saying which variables to set."""
        if self.agency_client_names:
            if not self.has_credentials():
                raise ConfigError(
                    "VK_AGENCY_CLIENTS needs the agency's VK_CLIENT_ID and VK_CLIENT_SECRET "
                    "(ads.vk.com → Настройки → API)"
                )
            return [
                AccountSpec(name, "agency_client_credentials", name)
                for name in self.agency_client_names
            ]
        # Credentials first: zakaz refreshes what it obtains, a pre-issued token just dies.
        if self.has_credentials():
            return [AccountSpec(OWN_ACCOUNT, "client_credentials")]
        if self.token is not None and self.token.get_secret_value().strip():
            return [AccountSpec(OWN_ACCOUNT, "token")]
        raise ConfigError(
            "VK Ads is not configured: set VK_CLIENT_ID and VK_CLIENT_SECRET (ads.vk.com → "
            "Настройки → API), or VK_TOKEN with a pre-issued access token"
        )


def get_settings() -> VkAdsSettings:
    """The source's settings from the environment and `secrets/.env.vk_ads` (built per call)."""
    try:
        return load_settings(VkAdsSettings, "vk_ads")
    except ValueError as exc:
        # pydantic's message names the variable; it never echoes SecretStr values.
        raise ConfigError(f"VK Ads settings are invalid: {exc}") from exc
