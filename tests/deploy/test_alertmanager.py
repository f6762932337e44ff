"""infra/alertmanager: the config render.sh writes at container start, checked by `amtool`, with
the e-mail receiver built from the health service's own settings (AlertSettings)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_compose import active, resolve
from deploy_support import ROOT, load_yaml, tool
from zakaz_health.settings import AlertSettings

ALERTMANAGER = ROOT / "infra" / "alertmanager"
RENDER = ALERTMANAGER / "render.sh"
TEMPLATE = ALERTMANAGER / "alertmanager.yml.tmpl"
#: A password with everything YAML or a template engine might trip on.
AWKWARD = 'p"a\\ss & /@@TO@@ $HOME: #x\\'


def render(tmp_path: Path, **settings: str) -> tuple[Path, str]:
    """Render the config with only `settings` in the environment; its path and render's log."""
    output = tmp_path / "alertmanager.yml"
    done = subprocess.run(
        ["/bin/sh", str(RENDER), str(TEMPLATE), str(output)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **settings},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return output, done.stderr


def amtool_accepts(config: Path) -> str:
    """`amtool check-config` on the file; its report."""
    done = subprocess.run(
        [tool("amtool"), "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    return done.stdout


def read(config: Path) -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(config)
    return data


def test_without_an_smtp_host_every_alert_goes_to_the_no_mail_receiver(tmp_path: Path) -> None:
    config, log = render(tmp_path, ALERT_EMAIL_TO="ops@example.ru", SMTP_PORT="587")

    amtool_accepts(config)
    data = read(config)
    assert data["route"]["receiver"] == "no-mail"
    assert data["receivers"] == [{"name": "no-mail"}]
    assert not any(key.startswith("smtp_") for key in data["global"])
    assert "not e-mailed" in log
    assert not AlertSettings(ALERT_EMAIL_TO="ops@example.ru").configured


def test_without_a_recipient_nothing_is_mailed_either(tmp_path: Path) -> None:
    config, _ = render(tmp_path, SMTP_HOST="smtp.example.ru", SMTP_USER="bot@example.ru")

    amtool_accepts(config)
    assert read(config)["route"]["receiver"] == "no-mail"


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(
            {
                "ALERT_EMAIL_TO": "ops@example.ru, duty@example.ru",
                "SMTP_HOST": "smtp.example.ru",
                "SMTP_USER": "bot@example.ru",
                "SMTP_PASSWORD": AWKWARD,
            },
            id="user-is-the-sender-587",
        ),
        pytest.param(
            {
                "ALERT_EMAIL_TO": "ops@example.ru",
                "SMTP_HOST": " smtp.example.ru ",
                "SMTP_PORT": "465",
                "SMTP_USER": "bot",
                "SMTP_PASSWORD": "s3cret",
                "SMTP_FROM": "zakaz <alerts@example.ru>",
            },
            id="smtps-with-from",
        ),
        pytest.param(
            {"ALERT_EMAIL_TO": "ops@example.ru", "SMTP_HOST": "relay.lan", "SMTP_PORT": "25"},
            id="relay-without-login",
        ),
    ],
)
def test_with_smtp_settings_alerts_are_mailed_as_the_health_service_mails(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    config, log = render(tmp_path, **settings)
    health = AlertSettings(**settings)  # type: ignore[arg-type]

    amtool_accepts(config)
    data = read(config)
    assert health.configured
    assert data["route"]["receiver"] == "email"
    email = next(r for r in data["receivers"] if r["name"] == "email")
    assert email["email_configs"] == [{"to": ", ".join(health.recipients), "send_resolved": True}]
    smtp = data["global"]
    assert smtp["smtp_smarthost"] == f"{health.smtp_host.strip()}:{health.smtp_port}"  # type: ignore[union-attr]
    assert smtp["smtp_from"] == health.sender
    assert smtp["smtp_auth_username"] == (health.smtp_user or "")
    password = health.smtp_password.get_secret_value() if health.smtp_password else ""
    assert smtp["smtp_auth_password"] == password
    # A password travels encrypted only, as the health service's own mail insists.
    assert smtp["smtp_require_tls"] is bool(health.smtp_user)
    assert "e-mailed to" in log
    if password:
        assert password not in log


def test_the_rendered_config_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    config, _ = render(
        tmp_path, ALERT_EMAIL_TO="a@example.ru", SMTP_HOST="h", SMTP_PASSWORD=AWKWARD
    )

    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert not (tmp_path / "alertmanager.yml.tmp").exists()


def test_render_then_runs_the_command_it_is_given(tmp_path: Path) -> None:
    output = tmp_path / "am.yml"
    done = subprocess.run(
        ["/bin/sh", str(RENDER), str(TEMPLATE), str(output), "cat", str(output)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == output.read_text()


def test_amtool_does_reject_a_broken_config(tmp_path: Path) -> None:
    config, _ = render(tmp_path)
    config.write_text(config.read_text().replace('receiver: "no-mail"', 'receiver: "nobody"'))

    done = subprocess.run(
        [tool("amtool"), "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0


def test_compose_renders_the_config_and_prometheus_sends_to_it() -> None:
    services = active(resolve({}), "monitoring")
    alertmanager = services["alertmanager"]
    prometheus = load_yaml(ROOT / "infra" / "prometheus" / "prometheus.yml")

    assert alertmanager["env_file"] == [{"path": "secrets/.env.health", "required": False}]
    assert alertmanager["env_file"] == services["health"]["env_file"]
    entry = alertmanager["entrypoint"]
    assert entry[:2] == ["/bin/sh", "/etc/zakaz/alertmanager/render.sh"]
    assert entry[2] == "/etc/zakaz/alertmanager/alertmanager.yml.tmpl"
    assert f"--config.file={entry[3]}" in alertmanager["command"]
    assert alertmanager["command"][0] == "/bin/alertmanager"
    assert "./infra/alertmanager:/etc/zakaz/alertmanager:ro" in alertmanager["volumes"]
    targets = [
        t
        for am in prometheus["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    assert set(alertmanager["networks"]) & set(services["prometheus"]["networks"])
    assert "egress" in alertmanager["networks"]
