"""Settings of the `direct` source: CONTRACT §2 names and defaults, refusing bad values."""

from __future__ import annotations

import pytest
from zakaz_common.errors import ConfigError
from zakaz_direct.settings import DEFAULT_API_URL, get_settings


def test_defaults_follow_the_contract() -> None:
    settings = get_settings()

    assert settings.api_url == DEFAULT_API_URL == "https://api.direct.yandex.com/json/v5"
    assert (settings.include_vat, settings.vat, settings.lookback_days) == ("YES", True, 3)
    assert settings.token is None and settings.client_login is None


@pytest.mark.parametrize(
    ("raw", "vat"),
    [
        pytest.param("YES", "YES", id="yes"),
        pytest.param(" no ", "NO", id="no_padded_lower"),
        pytest.param("false", "NO", id="false"),
        pytest.param("1", "YES", id="one"),
    ],
)
def test_include_vat_reads_yes_and_no(raw: str, vat: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIRECT_INCLUDE_VAT", raw)

    assert get_settings().include_vat == vat


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        pytest.param("DIRECT_INCLUDE_VAT", "maybe", "use YES or NO", id="vat_maybe"),
        pytest.param("DIRECT_API_URL", "api.direct.yandex.com", "http", id="url_without_scheme"),
        pytest.param("DIRECT_LOOKBACK_DAYS", "-1", "lookback_days", id="negative_lookback"),
    ],
)
def test_bad_values_are_a_config_error(
    name: str, value: str, mentions: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=mentions):
        get_settings()


def test_the_login_is_trimmed_and_lower_cased_and_the_url_loses_its_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIRECT_CLIENT_LOGIN", "  Zakaz-Events ")
    monkeypatch.setenv("DIRECT_API_URL", "http://127.0.0.1:8000/json/v5/")
    monkeypatch.setenv("DIRECT_TOKEN", "y0_secret-token-value")

    settings = get_settings()

    assert settings.client_login == "zakaz-events"
    assert settings.api_url == "http://127.0.0.1:8000/json/v5"
    assert settings.require_credentials() == ("y0_secret-token-value", "zakaz-events")
    assert "y0_secret" not in repr(settings)


def test_missing_credentials_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="DIRECT_TOKEN and DIRECT_CLIENT_LOGIN not set"):
        get_settings().require_credentials()
