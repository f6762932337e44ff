"""Settings: DSN resolution, env files, redaction of secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from zakaz_common.errors import ConfigError
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings, redact_dsn


@pytest.mark.parametrize(
    ("settings", "dsn", "database"),
    [
        (WarehouseSettings(), "chdb:///srv/data/warehouse", "zakaz"),
        (
            WarehouseSettings(host="ch", user="etl_writer", password=SecretStr("p@ss:w")),
            "http://etl_writer:p%40ss%3Aw@ch:8123/zakaz",
            "zakaz",
        ),
        (
            WarehouseSettings(host="ch", port=8443, secure=True, database="other"),
            "https://default@ch:8443/other",
            "other",
        ),
        (
            WarehouseSettings(dsn=SecretStr("http://u:pw@clickhouse:8123/zakaz2"), host="ignored"),
            "http://u:pw@clickhouse:8123/zakaz2",
            "zakaz2",
        ),
        (
            WarehouseSettings(dsn=SecretStr("chdb:///var/lib/zakaz/warehouse")),
            "chdb:///var/lib/zakaz/warehouse",
            "zakaz",
        ),
    ],
    ids=["embedded_default", "host_parts_quoted", "secure_port", "dsn_wins", "chdb_dsn"],
)
def test_dsn_resolution(settings: WarehouseSettings, dsn: str, database: str) -> None:
    resolved = settings.resolved_dsn(Path("/srv/data"))
    assert resolved == dsn
    assert settings.database_for(resolved) == database


def test_an_unknown_dsn_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scheme 'postgres'"):
        WarehouseSettings(dsn=SecretStr("postgres://x@y/z")).resolved_dsn(Path("/tmp"))


def test_redacted_dsn_hides_the_password() -> None:
    assert redact_dsn("http://etl:s3cret@ch:8123/zakaz") == "http://etl:***@ch:8123/zakaz"
    assert redact_dsn("chdb:///data/warehouse") == "chdb:///data/warehouse"


def test_relative_data_dir_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZAKAZ_DATA_DIR", "rel/data")
    assert CoreSettings().data_dir == tmp_path / "rel" / "data"


def test_a_service_reads_its_env_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / ".env.vk_ads").write_text(
        "ZAKAZ_TZ=Asia/Yekaterinburg\nCH_USER=from_file\n"
    )
    monkeypatch.setenv("CH_USER", "from_env")

    assert load_settings(CoreSettings, "vk_ads").tz == "Asia/Yekaterinburg"
    assert load_settings(WarehouseSettings, "vk_ads").user == "from_env"
    assert load_settings(CoreSettings, "direct").tz == "Europe/Moscow"


def test_an_unknown_time_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAKAZ_TZ", "Europe/Atlantis")
    with pytest.raises(ValueError, match="not a known time zone"):
        CoreSettings()


def test_secrets_do_not_show_in_reprs() -> None:
    settings = WarehouseSettings(
        password=SecretStr("hunter2"), dsn=SecretStr("http://a:hunter2@h/db")
    )
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
