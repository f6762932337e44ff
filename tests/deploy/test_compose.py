"""compose.yaml: valid against the Compose specification, the operational rules of issue 9, and
the demo as a user meets it (issue 19): `docker compose --profile demo up -d` with no `.env`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_compose import (
    GUARD_ENTRYPOINT,
    GUARD_MOUNT,
    InterpolationError,
    active,
    demo_values,
    holds_demo_value,
    interpolate,
    resolve,
)
from deploy_support import COMPOSE, ROOT, SOURCES, load_yaml, tool

SPEC = load_yaml(COMPOSE)
SERVICES: dict[str, dict[str, Any]] = SPEC["services"]

#: Services started by a plain `docker compose up -d`, and what each profile adds.
PRODUCTION = {"clickhouse", "redis", "migrate", *SOURCES, "scheduler", "health", "caddy"}
PROFILES = {
    "demo": {"sandbox", "demo-load"},
    "monitoring": {"prometheus", "alertmanager", "grafana"},
}

#: One-shot services: judged by their exit code, never restarted.
ONE_SHOTS = {"migrate", "demo-load"}

#: Services running zakaz code (our images), which need the schema that `migrate` creates.
ZAKAZ = {*SOURCES, "scheduler", "health", "demo-load"}

#: A variable that holds a secret, by its name.
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|KEY|HASH|DSN)$")
#: An environment entry of compose.yaml: `NAME: value`.
ENV_LINE = re.compile(r"^\s*(?P<key>[A-Z][A-Z0-9_]*):\s*(?P<value>.*)$")
#: A variable with its demo value as default: `${NAME:-value}`.
DEMO_DEFAULT = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]+)\}$")


def _memory_mb(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG])", value.strip().upper()).groups()  # type: ignore[union-attr]
    return float(number) * {"K": 1 / 1024, "M": 1, "G": 1024}[unit]


def test_compose_validates_against_the_compose_specification() -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_does_reject_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace(
            "condition: service_completed_successfully", "condition: done", 1
        )
    )
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode != 0


def test_the_services_are_the_contracts_and_the_profiles_add_the_rest() -> None:
    plain = {name for name, svc in SERVICES.items() if not svc.get("profiles")}

    assert plain == PRODUCTION
    for profile, added in PROFILES.items():
        assert {n for n, s in SERVICES.items() if profile in s.get("profiles", [])} == added


@pytest.mark.parametrize("name", sorted(set(SERVICES) - ONE_SHOTS))
def test_every_long_running_service_has_a_healthcheck_and_restarts(name: str) -> None:
    service = SERVICES[name]
    check = service.get("healthcheck") or {}

    assert not check.get("disable"), name
    assert check.get("test"), f"{name} has no healthcheck"
    assert check["test"][0] in {"CMD", "CMD-SHELL"}
    assert service.get("restart") == "unless-stopped"


@pytest.mark.parametrize("name", sorted(ONE_SHOTS))
def test_one_shots_run_once_and_are_judged_by_their_exit_code(name: str) -> None:
    service = SERVICES[name]

    assert service.get("restart") == "no"
    assert service["healthcheck"] == {"disable": True}


@pytest.mark.parametrize("name", sorted(ZAKAZ))
def test_zakaz_services_wait_for_the_migration(name: str) -> None:
    depends = SERVICES[name]["depends_on"]

    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["clickhouse"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


def test_migrate_runs_zakaz_migrate_once_clickhouse_is_healthy() -> None:
    migrate = SERVICES["migrate"]

    assert migrate["command"] == ["zakaz", "migrate"]
    assert migrate["depends_on"] == {"clickhouse": {"condition": "service_healthy"}}


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_serves_its_control_api_on_8000(source: str) -> None:
    service = SERVICES[source]

    assert service["command"] == ["zakaz", "serve", source, "--port", "8000"]
    assert service["build"]["dockerfile"] == f"services/{source}/Dockerfile"
    assert service["env_file"] == [{"path": f"secrets/.env.{source}", "required": False}]
    assert service["environment"]["ZAKAZ_SERVICE"] == source
    assert "egress" in service["networks"]


def test_the_scheduler_and_health_run_the_health_image() -> None:
    for name in ("scheduler", "health", "migrate", "demo-load"):
        assert SERVICES[name]["build"]["dockerfile"] == "services/health/Dockerfile"
        assert SERVICES[name]["image"] == "zakaz/health:local"
    assert SERVICES["scheduler"]["command"] == ["zakaz", "serve", "scheduler"]
    assert SERVICES["health"]["command"] == ["zakaz", "serve", "health", "--port", "8000"]


def test_every_build_points_at_a_dockerfile_that_exists() -> None:
    used = set()
    for name, service in SERVICES.items():
        if "build" not in service:
            continue
        build = service["build"]
        assert build["context"] == ".", f"{name}: images are built from the repository root"
        dockerfile = ROOT / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        used.add(dockerfile)
    assert used == set(ROOT.glob("services/*/Dockerfile")), "a Dockerfile no service builds"


def test_every_other_image_is_pinned_to_a_version() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag, f"{name}: {image} has no tag"
        assert tag not in {"latest", "stable", "lts"}, f"{name}: {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: {image} names no version"
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")


def test_only_caddy_publishes_ports_and_clickhouse_none() -> None:
    assert "ports" not in SERVICES["clickhouse"]
    assert sorted(SERVICES["caddy"]["ports"]) == ["443:443", "443:443/udp", "80:80"]
    for name, service in SERVICES.items():
        if name == "caddy":
            continue
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            assert name in PROFILES["monitoring"], f"{name} publishes {port}"


def test_caddy_reaches_only_health_and_clickhouse() -> None:
    assert SERVICES["caddy"]["networks"] == ["edge", "demo"]
    on_edge = {n for n, s in SERVICES.items() if "edge" in s.get("networks", [])}
    assert on_edge == {"caddy", "health", "clickhouse"}
    # `demo` only lets Caddy's guard ask the sandbox (profile demo) whether the demo is on.
    on_demo = {n for n, s in SERVICES.items() if "demo" in s.get("networks", [])}
    assert on_demo == {"caddy", "sandbox"}
    assert SPEC["networks"]["demo"]["internal"] is True
    assert SPEC["networks"]["backend"]["internal"] is True
    assert "egress" not in SERVICES["clickhouse"]["networks"]
    assert SERVICES["redis"]["networks"] == ["backend"]


def test_secrets_come_only_from_env_files_or_variables_with_their_demo_value() -> None:
    demo = demo_values()
    named = set()
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if not SECRET_NAME.search(key):
                continue
            match = DEMO_DEFAULT.match(str(value))
            assert match, f"{name}: {key} must be a variable with its demo default, not {value!r}"
            variable = match.group("name")
            assert variable in demo, f"{name}: {variable} has no demo value in infra/demo/demo.env"
            assert interpolate(str(value), {}) == demo[variable], f"{name}: {key}"
            named.add(variable)
        for env_file in service.get("env_file", []):
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            assert path.startswith("secrets/.env."), f"{name}: env file {path} outside secrets/"
            assert (ROOT / f"{path}.sample").is_file(), f"{name}: no {path}.sample"
    sample = (ROOT / "secrets" / "compose.env.sample").read_text()
    for variable in named | set(demo):
        assert re.search(rf"^{variable}=", sample, re.MULTILINE), (
            f"{variable} not in compose.env.sample"
        )


def test_no_secret_value_is_written_into_compose_yaml() -> None:
    demo = demo_values()
    for line in COMPOSE.read_text().splitlines():
        match = ENV_LINE.match(line)
        if match and SECRET_NAME.search(match.group("key")):
            value = match.group("value").strip()
            default = DEMO_DEFAULT.match(value)
            assert default, line
            assert interpolate(value, {}) == demo[default.group("name")], line


def test_every_demo_value_is_the_default_of_its_variable_in_compose_yaml() -> None:
    text = COMPOSE.read_text()
    for variable, value in demo_values().items():
        pattern = r"\$\{" + variable + r":-[^}]+\}"
        defaults = {interpolate(m.group(0), {}) for m in re.finditer(pattern, text)}
        assert defaults == {value}, f"{variable}: compose.yaml falls back to {defaults}"


def test_the_demo_profile_resolves_with_an_empty_environment() -> None:
    demo = active(resolve({}), "demo")

    assert set(demo) == PRODUCTION | PROFILES["demo"]
    for name, service in demo.items():
        for key, value in (service.get("environment") or {}).items():
            assert value not in (None, ""), f"{name}: {key} is empty with no .env"
            assert "${" not in str(value), f"{name}: {key} = {value!r}"
    # The platform settings are the demo's; the upstreams are the sandbox's (demo-secrets).
    values = demo_values()
    assert demo["health"]["environment"]["CH_PASSWORD"] == values["CH_ETL_PASSWORD"]
    caddy = demo["caddy"]["environment"]
    assert caddy["ZAKAZ_STATUS_PASSWORD_HASH"] == values["ZAKAZ_STATUS_PASSWORD_HASH"]
    assert caddy["ZAKAZ_STATUS_PASSWORD_HASH"].startswith("$2a$14$")
    assert caddy["ZAKAZ_TLS"] == "internal"
    for source in SOURCES:
        assert demo[source]["environment"]["ZAKAZ_API_TOKEN"] == values["ZAKAZ_API_TOKEN"]
        assert "demo-secrets:/app/secrets:ro" in demo[source]["volumes"]


def test_the_environment_wins_over_every_demo_value() -> None:
    real = {name: f"real-{name.lower()}" for name in demo_values()}
    services = active(resolve(real), "demo", "monitoring")

    held = {name: holds_demo_value(s) for name, s in services.items() if holds_demo_value(s)}
    assert held == {}
    assert services["clickhouse"]["environment"]["CH_ETL_PASSWORD"] == "real-ch_etl_password"
    assert services["caddy"]["environment"]["ZAKAZ_PUBLIC_HOST"] == "real-zakaz_public_host"


def test_an_empty_value_in_env_falls_back_to_the_demo_value_too() -> None:
    # `.env` copied from the sample and left empty: the guard then refuses it outside the demo.
    services = active(resolve(dict.fromkeys(demo_values(), "")))

    assert holds_demo_value(services["clickhouse"]) == [
        "CH_BACKUP_PASSWORD",
        "CH_DATALENS_PASSWORD",
        "CH_ETL_PASSWORD",
    ]


def test_the_interpolation_is_composes() -> None:
    env = {"SET": "v", "EMPTY": ""}

    assert interpolate("$$a ${SET} $SET ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "$a v v d  d"
    assert interpolate("${UNSET:-$${SET}}", env) == "${SET}"
    assert interpolate("${UNSET:-${SET}x}", env) == "vx"
    assert interpolate("${SET:+yes}${EMPTY:+no}${EMPTY+set}", env) == "yesset"
    with pytest.raises(InterpolationError, match="UNSET"):
        interpolate("${UNSET:?tell me}", env)
    with pytest.raises(InterpolationError, match="EMPTY"):
        interpolate("${EMPTY:?tell me}", env)


def test_every_container_holding_a_demo_value_starts_through_the_guard() -> None:
    services = active(resolve({}), "demo", "monitoring")
    guarded = {name for name, service in services.items() if holds_demo_value(service)}

    assert guarded == {
        "clickhouse",
        "migrate",
        *SOURCES,
        "scheduler",
        "health",
        "caddy",
        "demo-load",
    }
    for name in guarded:
        service = services[name]
        assert service["entrypoint"] == GUARD_ENTRYPOINT, name
        assert GUARD_MOUNT in service["volumes"], name
        # An entrypoint set in compose drops the image's CMD: each names its command itself.
        assert service.get("command"), name
    assert services["clickhouse"]["command"] == ["/entrypoint.sh"]
    assert services["caddy"]["command"][:2] == ["caddy", "run"]
    # The guard asks http://sandbox:8000/healthz: each guarded service shares a network with it.
    sandbox_networks = set(services["sandbox"]["networks"])
    for name in guarded:
        assert sandbox_networks & set(services[name]["networks"]), name


def test_no_required_variable_is_left_to_stop_the_demo() -> None:
    assert not re.search(r"\$\{[A-Z0-9_]+:?\?", COMPOSE.read_text())


def test_redis_is_persistent_with_an_append_only_file() -> None:
    redis = SERVICES["redis"]

    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert "redis-data:/data" in redis["volumes"]


def test_clickhouse_keeps_data_and_backups_in_volumes_and_mounts_its_config() -> None:
    volumes = SERVICES["clickhouse"]["volumes"]

    assert "clickhouse-data:/var/lib/clickhouse" in volumes
    assert "clickhouse-backups:/var/lib/clickhouse-backups" in volumes
    assert "clickhouse-backups:/backups" in SERVICES["health"]["volumes"]
    assert SERVICES["health"]["environment"]["ZAKAZ_BACKUP_DIR"] == "/backups"


def test_every_bind_mount_of_the_repository_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./") and not source.startswith("./secrets"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_the_demo_points_the_sources_at_the_sandbox() -> None:
    sandbox = SERVICES["sandbox"]

    assert sandbox["environment"]["ZAKAZ_SANDBOX_SECRETS_DIR"] == "/app/secrets"
    assert "demo-secrets:/app/secrets" in sandbox["volumes"]
    for source in SOURCES:
        service = SERVICES[source]
        assert "demo-secrets:/app/secrets:ro" in service["volumes"]
        assert service["depends_on"]["sandbox"] == {
            "condition": "service_healthy",
            "required": False,
        }
    assert SERVICES["demo-load"]["depends_on"]["sandbox"]["condition"] == "service_healthy"


def test_monitoring_is_provisioned_from_infra() -> None:
    prometheus = SERVICES["prometheus"]
    grafana = SERVICES["grafana"]

    assert "./infra/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    mounts = " ".join(grafana["volumes"])
    assert "./infra/grafana/provisioning/datasources" in mounts
    assert "./infra/grafana/dashboards:/var/lib/grafana/dashboards" in mounts


def test_resource_limits_fit_a_two_core_four_gigabyte_server() -> None:
    total = 0.0
    for name, service in SERVICES.items():
        limits = service["deploy"]["resources"]["limits"] if "deploy" in service else None
        assert limits, f"{name} has no resource limits"
        assert float(limits["cpus"]) <= 2, name
        if name in PRODUCTION - ONE_SHOTS:
            total += _memory_mb(limits["memory"])
    # What stays running in production, with 256 MB left for the host itself.
    assert total <= 4096 - 256, f"production limits add up to {total:.0f} MB of 4096"


def test_zakaz_containers_run_hardened() -> None:
    for name in {*ZAKAZ, "migrate", "sandbox"}:
        service = SERVICES[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
