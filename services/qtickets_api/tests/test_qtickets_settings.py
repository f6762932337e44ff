"""Settings of the source: CONTRACT §2 names and aliases, defaults, the env file, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from zakaz_common.errors import ConfigError
from zakaz_qtickets_api.manifest import MANIFEST
from zakaz_qtickets_api.settings import get_settings


@pytest.mark.parametrize(
    ("url_name", "token_name"),
    [
        pytest.param("QTICKETS_BASE_URL", "QTICKETS_TOKEN", id="contract_names"),
        pytest.param("QTICKETS_API_BASE_URL", "QTICKETS_API_TOKEN", id="aliases"),
    ],
)
def test_names_and_aliases(monkeypatch: pytest.MonkeyPatch, url_name: str, token_name: str) -> None:
    monkeypatch.setenv(url_name, "https://irs-prod.qtickets.ru/api/rest/v1/")
    monkeypatch.setenv(token_name, "tok-123")

    settings = get_settings()

    assert settings.credentials() == ("https://irs-prod.qtickets.ru/api/rest/v1", "tok-123")
    assert settings.days_back == 30
    assert "tok-123" not in repr(settings)


def test_the_contract_name_wins_over_the_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTICKETS_BASE_URL", "https://a.example/api/rest/v1")
    monkeypatch.setenv("QTICKETS_API_BASE_URL", "https://b.example/api/rest/v1")
    monkeypatch.setenv("QTICKETS_DAYS_BACK", "7")

    settings = get_settings()

    assert (settings.base_url, settings.days_back) == ("https://a.example/api/rest/v1", 7)


def test_the_service_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / ".env.qtickets_api").write_text(
        "QTICKETS_BASE_URL=http://127.0.0.1:8099/api/rest/v1\nQTICKETS_TOKEN=from-file\n"
    )
    monkeypatch.chdir(tmp_path)

    assert get_settings().credentials() == ("http://127.0.0.1:8099/api/rest/v1", "from-file")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({}, "QTICKETS_BASE_URL is not set", id="no_url"),
        pytest.param(
            {"QTICKETS_BASE_URL": "https://q.example/api/rest/v1"},
            "QTICKETS_TOKEN is not set",
            id="no_token",
        ),
        pytest.param(
            {"QTICKETS_BASE_URL": "https://q.example/api/rest/v1", "QTICKETS_TOKEN": "  "},
            "QTICKETS_TOKEN is not set",
            id="blank_token",
        ),
    ],
)
def test_missing_settings_say_what_to_set(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=message):
        get_settings().credentials()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        pytest.param(
            "QTICKETS_BASE_URL", "qtickets.ru/api/rest/v1", "http", id="url_without_scheme"
        ),
        pytest.param("QTICKETS_DAYS_BACK", "0", "greater than or equal to 1", id="days_zero"),
        pytest.param("QTICKETS_DAYS_BACK", "месяц", "integer", id="days_not_a_number"),
    ],
)
def test_invalid_settings_are_a_config_error_without_the_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=message) as caught:
        get_settings()

    assert value not in str(caught.value)


def test_the_manifest() -> None:
    assert (MANIFEST.name, MANIFEST.schedule, MANIFEST.data_date) == (
        "qtickets_api",
        "*/15 * * * *",
        "sale_date",
    )
    assert "fact_qtickets_sales_utm_daily" in MANIFEST.tables
    assert MANIFEST.load_function().__name__ == "load"
