"""Settings: which accounts a configuration loads, and what a bad one says."""

from __future__ import annotations

import pytest
from zakaz_common.errors import ConfigError
from zakaz_vk_ads.settings import OWN_ACCOUNT, AccountSpec, get_settings

_CREDS = {"VK_CLIENT_ID": "app", "VK_CLIENT_SECRET": "s3cr3t-value"}


@pytest.mark.parametrize(
    ("env", "accounts"),
    [
        pytest.param(_CREDS, [AccountSpec(OWN_ACCOUNT, "client_credentials")], id="own_account"),
        pytest.param({"VK_TOKEN": "tok"}, [AccountSpec(OWN_ACCOUNT, "token")], id="token_only"),
        pytest.param(
            {**_CREDS, "VK_TOKEN": "tok"},
            [AccountSpec(OWN_ACCOUNT, "client_credentials")],
            id="credentials_win_over_token",
        ),
        pytest.param(
            {**_CREDS, "VK_AGENCY_CLIENTS": " a_1, b_2 ,,a_1"},
            [
                AccountSpec("a_1", "agency_client_credentials", "a_1"),
                AccountSpec("b_2", "agency_client_credentials", "b_2"),
            ],
            id="agency_clients_trimmed_deduplicated",
        ),
        pytest.param(
            {**_CREDS, "VK_AGENCY_CLIENTS": " , "},
            [AccountSpec(OWN_ACCOUNT, "client_credentials")],
            id="blank_agency_list_is_none",
        ),
    ],
)
def test_accounts_of_a_configuration(
    env: dict[str, str], accounts: list[AccountSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert get_settings().accounts() == accounts


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({}, "set VK_CLIENT_ID and VK_CLIENT_SECRET", id="nothing_set"),
        pytest.param({"VK_CLIENT_ID": "app"}, "or VK_TOKEN", id="secret_missing"),
        pytest.param(
            {"VK_CLIENT_ID": "app", "VK_CLIENT_SECRET": "  "}, "VK_CLIENT_SECRET", id="blank_secret"
        ),
        pytest.param(
            {"VK_TOKEN": "tok", "VK_AGENCY_CLIENTS": "a"},
            "VK_AGENCY_CLIENTS needs",
            id="agency_without_credentials",
        ),
    ],
)
def test_an_incomplete_configuration_says_what_to_set(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=message):
        get_settings().accounts()


@pytest.mark.parametrize(
    ("value", "url"),
    [
        pytest.param("https://ads.vk.com", "https://ads.vk.com", id="default_form"),
        pytest.param("https://ads.vk.com/", "https://ads.vk.com", id="trailing_slash"),
        pytest.param("http://127.0.0.1:9/api/v2/", "http://127.0.0.1:9", id="api_path_given"),
        pytest.param(" https://ads.vk.ru/api ", "https://ads.vk.ru", id="spaces_and_api"),
    ],
)
def test_the_api_url_is_the_host_root(
    value: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VK_API_URL", value)

    assert get_settings().api_url == url


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("VK_API_URL", "ads.vk.com", id="url_without_scheme"),
        pytest.param("VK_LOOKBACK_DAYS", "-1", id="negative_lookback"),
        pytest.param("VK_LOOKBACK_DAYS", "три", id="lookback_not_a_number"),
    ],
)
def test_bad_values_are_config_errors_naming_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=name.removeprefix("VK_").lower()):
        get_settings()


def test_defaults_and_the_secret_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _CREDS.items():
        monkeypatch.setenv(name, value)

    settings = get_settings()

    assert (settings.api_url, settings.lookback_days) == ("https://ads.vk.com", 3)
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in str(settings)
