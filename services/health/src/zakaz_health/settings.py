"""The health service's own settings: alert e-mail and its SMTP server, the page's links."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Service name: its env file is `secrets/.env.health`.
SERVICE = "health"

#: SMTP port of implicit TLS (SMTPS); any other port speaks plain SMTP, upgraded by STARTTLS.
SMTPS_PORT = 465


class AlertSettings(BaseSettings):
    """Alert e-mail (CONTRACT §2): sent only when `ALERT_EMAIL_TO` and `SMTP_HOST` are set."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    email_to: str | None = Field(default=None, validation_alias="ALERT_EMAIL_TO")
    smtp_host: str | None = Field(default=None, validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=587, validation_alias="SMTP_PORT")
    smtp_user: str | None = Field(default=None, validation_alias="SMTP_USER")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="SMTP_PASSWORD")
    smtp_from: str | None = Field(default=None, validation_alias="SMTP_FROM")
    smtp_timeout_seconds: float = 20.0

    @field_validator("email_to", "smtp_host", "smtp_user", "smtp_from", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `SMTP_HOST=` in an env file means "not configured", not "connect to ''".
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def recipients(self) -> list[str]:
        """The addresses of `ALERT_EMAIL_TO` (a comma list)."""
        return [a.strip() for a in (self.email_to or "").split(",") if a.strip()]

    @property
    def configured(self) -> bool:
        """Whether alert e-mail is on."""
        return bool(self.recipients and self.smtp_host)

    @property
    def sender(self) -> str:
        """The From address: `SMTP_FROM`, else `SMTP_USER` when it is an address."""
        if self.smtp_from:
            return self.smtp_from
        if self.smtp_user and "@" in self.smtp_user:
            return self.smtp_user
        return "zakaz-alerts@localhost"


class PageSettings(BaseSettings):
    """The status page's links to the dashboards; an empty or unset URL shows no link."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    grafana_url: str | None = Field(default=None, validation_alias="ZAKAZ_GRAFANA_URL")
    datalens_url: str | None = Field(default=None, validation_alias="ZAKAZ_DATALENS_URL")

    @field_validator("grafana_url", "datalens_url", mode="before")
    @classmethod
    def _http_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip()
        parts = urlsplit(text)
        if parts.username or parts.password:
            # Anyone who can read the page sees its links: no credentials in them.
            raise ValueError("must not carry a user or password")
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host, e.g. https://grafana.example/d/x")
        return text

    @property
    def links(self) -> list[tuple[str, str]]:
        """(label, URL) of every configured dashboard."""
        found = [("Grafana", self.grafana_url), ("DataLens dashboard", self.datalens_url)]
        return [(label, url) for label, url in found if url]
