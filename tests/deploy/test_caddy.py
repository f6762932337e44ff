"""infra/caddy/Caddyfile, run by the real caddy binary with its internal CA in front of the health
service and a stand-in of ClickHouse's HTTP interface, all on loopback."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy_support import CADDYFILE, ROOT, tool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.migrate import migrate
from zakaz_common.settings import CoreSettings, WarehouseSettings
from zakaz_common.testing import RedisServer, free_port, serving
from zakaz_health.app import create_app

PUBLIC_HOST = "zakaz.test"
CLICKHOUSE_HOST = "ch.zakaz.test"
STATUS_USER = "ops"
STATUS_PASSWORD = "correct horse battery staple"


def clickhouse_stand_in() -> FastAPI:
    """Answers like ClickHouse's HTTP interface, echoing who asked: enough to see what Caddy lets by."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ping")
    def ping() -> PlainTextResponse:
        return PlainTextResponse("Ok.\n")

    @app.api_route("/", methods=["GET", "POST"])
    def query(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "query": request.query_params.get("query"),
                "user_header": request.headers.get("x-clickhouse-user"),
                "authorization": request.headers.get("authorization"),
            }
        )

    @app.get("/play")
    def play() -> PlainTextResponse:
        return PlainTextResponse("the Play UI")

    @app.get("/dashboard")
    def dashboard() -> PlainTextResponse:
        return PlainTextResponse("the dashboard")

    return app


@dataclass
class Edge:
    """A running Caddy: its ports and its internal CA's root certificate."""

    https_port: int
    http_port: int
    probe_port: int
    root_ca: Path

    def get(self, host: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to `host` over HTTPS on loopback, the certificate verified for `host`."""
        return self.request("GET", host, path, **kwargs)

    def request(self, method: str, host: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any request to `host` over HTTPS, verified against Caddy's root certificate."""
        context = ssl.create_default_context(cafile=str(self.root_ca))
        with httpx.Client(verify=context, timeout=10) as client:
            return client.request(
                method,
                f"https://127.0.0.1:{self.https_port}{path}",
                headers={"Host": host, **kwargs.pop("headers", {})},
                extensions={"sni_hostname": host},
                **kwargs,
            )


def _hash_password(caddy: str, password: str) -> str:
    done = subprocess.run(
        [caddy, "hash-password", "--plaintext", password],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def _wait_for_port(port: int, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"caddy exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"caddy did not listen on {port}: {log.read_text()[-3000:]}")


def _wait_for_certificates(edge: Edge, log: Path) -> None:
    # Caddy issues its internal certificates just after it starts listening.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            for host in (PUBLIC_HOST, CLICKHOUSE_HOST):
                edge.get(host, "/ping")
            return
        except (httpx.ConnectError, ssl.SSLError, OSError):
            time.sleep(0.2)
    pytest.fail(f"caddy issued no certificate in 30 s: {log.read_text()[-3000:]}")


def _caddy_env(
    tmp: Path, ports: dict[str, int], health_url: str, clickhouse_url: str
) -> dict[str, str]:
    caddy = tool("caddy")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "ZAKAZ_PUBLIC_HOST": PUBLIC_HOST,
        "ZAKAZ_CLICKHOUSE_HOST": CLICKHOUSE_HOST,
        "ZAKAZ_TLS": "internal",
        "ZAKAZ_STATUS_USER": STATUS_USER,
        "ZAKAZ_STATUS_PASSWORD_HASH": _hash_password(caddy, STATUS_PASSWORD),
        "ZAKAZ_HTTPS_PORT": str(ports["https"]),
        "ZAKAZ_HTTP_PORT": str(ports["http"]),
        "ZAKAZ_CADDY_HEALTH_PORT": str(ports["probe"]),
        "ZAKAZ_HEALTH_UPSTREAM": health_url.removeprefix("http://"),
        "ZAKAZ_CLICKHOUSE_UPSTREAM": clickhouse_url.removeprefix("http://"),
    }


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    """A migrated database of this module's own in the session's embedded warehouse."""
    name = f"t_caddy_{uuid.uuid4().hex[:8]}"
    wh = open_warehouse(WarehouseSettings(), CoreSettings(), database=name)
    migrate(wh)
    yield wh
    wh.command(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="module")
def edge(
    warehouse: Warehouse, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    """Caddy with its internal CA in front of the real health app and a ClickHouse stand-in."""
    caddy = tool("caddy")
    tmp_path = tmp_path_factory.mktemp("caddy")
    if redis_server.proc is None:
        redis_server.start()
    ports = {"https": free_port(), "http": free_port(), "probe": free_port()}
    with (
        serving(create_app(redis_url=redis_server.url, warehouse=warehouse)) as health_url,
        serving(clickhouse_stand_in()) as clickhouse_url,
    ):
        env = _caddy_env(tmp_path, ports, health_url, clickhouse_url)
        log = tmp_path / "caddy.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            _wait_for_port(ports["https"], proc, log)
            root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
            running = Edge(ports["https"], ports["http"], ports["probe"], root)
            _wait_for_certificates(running, log)
            yield running
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


STATUS_AUTH = _basic(STATUS_USER, STATUS_PASSWORD)


def test_caddy_validates_the_caddyfile(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "ZAKAZ_PUBLIC_HOST": "zakaz.example.ru",
        "ZAKAZ_CLICKHOUSE_HOST": "ch.zakaz.example.ru",
        "ZAKAZ_TLS": "ops@example.ru",
        "ZAKAZ_STATUS_PASSWORD_HASH": _hash_password(tool("caddy"), "x"),
    }
    done = subprocess.run(
        [tool("caddy"), "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Valid configuration" in done.stdout + done.stderr


def test_the_caddyfile_is_formatted() -> None:
    done = subprocess.run(
        [tool("caddy"), "fmt", str(CADDYFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout == CADDYFILE.read_text(), "run: caddy fmt --overwrite infra/caddy/Caddyfile"


def test_the_status_page_is_served_over_https_with_its_password(edge: Edge) -> None:
    page = edge.get(PUBLIC_HOST, "/", headers=STATUS_AUTH)

    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert page.http_version in {"HTTP/1.1", "HTTP/2"}
    assert page.headers["strict-transport-security"].startswith("max-age=31536000")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "server" not in page.headers


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no_password"),
        pytest.param(_basic(STATUS_USER, "wrong"), id="wrong_password"),
        pytest.param(_basic("admin", STATUS_PASSWORD), id="wrong_user"),
    ],
)
def test_the_status_page_refuses_without_its_password(edge: Edge, headers: dict[str, str]) -> None:
    for path in ("/", "/healthz", "/healthz/detailed", "/metrics"):
        response = edge.get(PUBLIC_HOST, path, headers=headers)
        assert response.status_code == 401, path
        assert "www-authenticate" in response.headers


def test_the_health_endpoints_answer_behind_the_password(edge: Edge) -> None:
    healthz = edge.get(PUBLIC_HOST, "/healthz", headers=STATUS_AUTH)
    freshness = edge.get(PUBLIC_HOST, "/healthz/freshness", headers=STATUS_AUTH)
    metrics = edge.get(PUBLIC_HOST, "/metrics", headers=STATUS_AUTH)

    assert healthz.status_code == 200, healthz.text
    assert healthz.json()["checks"]["warehouse"] == "ok"
    assert freshness.status_code == 200
    assert "sources" in freshness.json()
    assert metrics.status_code == 200
    assert "# HELP" in metrics.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/openapi.json"),
        ("GET", "/runs"),
        ("POST", "/"),
        ("POST", "/healthz"),
        ("GET", "/anything/else"),
    ],
)
def test_only_the_health_routes_are_served(edge: Edge, method: str, path: str) -> None:
    response = edge.request(method, PUBLIC_HOST, path, headers=STATUS_AUTH)

    assert response.status_code == 404


def test_datalens_reaches_clickhouse_as_datalens_reader(edge: Edge) -> None:
    by_header = edge.get(
        CLICKHOUSE_HOST,
        "/?query=SELECT%201",
        headers={"X-ClickHouse-User": "datalens_reader", "X-ClickHouse-Key": "pw"},
    )
    by_basic = edge.request(
        "POST", CLICKHOUSE_HOST, "/", headers=_basic("datalens_reader", "pw"), content=b"SELECT 1"
    )
    ping = edge.get(CLICKHOUSE_HOST, "/ping")

    assert by_header.status_code == 200
    assert by_header.json()["user_header"] == "datalens_reader"
    assert by_basic.status_code == 200
    assert by_basic.json()["authorization"] == _basic("datalens_reader", "pw")["Authorization"]
    assert ping.text == "Ok.\n"
    assert by_header.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/?query=SELECT%201", {}, id="anonymous"),
        pytest.param("/?query=SELECT%201", {"X-ClickHouse-User": "etl_writer"}, id="etl_header"),
        pytest.param("/?query=SELECT%201", _basic("etl_writer", "pw"), id="etl_basic"),
        pytest.param("/?query=SELECT%201", _basic("default", ""), id="default_basic"),
        pytest.param("/?user=etl_writer&password=pw&query=SELECT%201", {}, id="etl_params"),
        pytest.param(
            "/?user=etl_writer&query=SELECT%201",
            {"X-ClickHouse-User": "datalens_reader"},
            id="datalens_header_with_user_param",
        ),
        pytest.param("/play", {"X-ClickHouse-User": "datalens_reader"}, id="play_ui"),
        pytest.param("/dashboard", {"X-ClickHouse-User": "datalens_reader"}, id="dashboard"),
        pytest.param(
            "/?query=SELECT%201",
            {"X-ClickHouse-User": "datalens_reader", **_basic("etl_writer", "pw")},
            id="two_identities",
        ),
    ],
)
def test_nothing_else_of_clickhouse_is_reachable(
    edge: Edge, path: str, headers: dict[str, str]
) -> None:
    response = edge.get(CLICKHOUSE_HOST, path, headers=headers)

    assert response.status_code == 404


def test_the_health_service_is_not_served_on_the_clickhouse_host(edge: Edge) -> None:
    response = edge.get(CLICKHOUSE_HOST, "/healthz", headers=STATUS_AUTH)

    assert response.status_code == 404


def test_an_unknown_host_gets_no_certificate(edge: Edge) -> None:
    with pytest.raises(httpx.ConnectError):
        edge.get("other.test", "/")


def test_plain_http_redirects_to_https(edge: Edge) -> None:
    response = httpx.get(
        f"http://127.0.0.1:{edge.http_port}/", headers={"Host": PUBLIC_HOST}, timeout=10
    )

    assert response.status_code in {301, 308}
    assert response.headers["location"].startswith(f"https://{PUBLIC_HOST}")


def test_the_container_probe_answers_on_loopback(edge: Edge) -> None:
    response = httpx.get(f"http://127.0.0.1:{edge.probe_port}/healthz", timeout=10)

    assert response.status_code == 200
    assert response.text == "ok"
