"""The page's dashboard links: http(s) URLs, empty meaning no link."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from zakaz_common.errors import ConfigError
from zakaz_health.app import create_app
from zakaz_health.settings import PageSettings


def test_unset_and_empty_mean_no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAKAZ_GRAFANA_URL", "  ")
    settings = PageSettings()
    assert (settings.grafana_url, settings.datalens_url, settings.links) == (None, None, [])


def test_configured_urls_become_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAKAZ_GRAFANA_URL", "https://grafana.example.ru/d/zakaz")
    monkeypatch.setenv("ZAKAZ_DATALENS_URL", "http://datalens.yandex/abc123 ")
    assert PageSettings().links == [
        ("Grafana", "https://grafana.example.ru/d/zakaz"),
        ("DataLens dashboard", "http://datalens.yandex/abc123"),
    ]


@pytest.mark.parametrize(
    "url",
    [
        "grafana.example.ru",
        "ftp://grafana.example.ru/",
        "javascript:alert(1)",
        "https://",
        "https://admin:hunter2pw@grafana.example.ru/",
    ],
)
def test_anything_but_an_http_url_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAKAZ_DATALENS_URL", url)
    with pytest.raises(ValidationError):
        PageSettings()


def test_the_app_refuses_a_bad_link_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAKAZ_GRAFANA_URL", "https://admin:hunter2pw@grafana.example.ru/")
    with pytest.raises(ConfigError) as caught:
        create_app(redis_url="redis://127.0.0.1:9/0", manifests=[])
    assert "ZAKAZ_GRAFANA_URL" in str(caught.value)
    assert "hunter2pw" not in str(caught.value)
