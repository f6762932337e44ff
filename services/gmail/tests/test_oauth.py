"""token.json read with its `token_uri` honoured, refreshed, written back; the one-time consent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import google.auth.exceptions
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from gmail_support import GmailSandbox
from google.oauth2.credentials import Credentials
from zakaz_common.errors import AuthError, ConfigError, TransientError
from zakaz_common.testing import serving
from zakaz_gmail.oauth import (
    SCOPES,
    TokenEndpointRequest,
    TokenFile,
    credentials_from_info,
    gmail_auth,
    read_token_file,
)

TOKEN_JSON = {
    "token": "ya29.a0-test",
    "refresh_token": "1//0g-test",
    "token_uri": "http://127.0.0.1:1/token",
    "client_id": "123.apps.googleusercontent.com",
    "client_secret": "GOCSPX-test",
    "scopes": list(SCOPES),
    "universe_domain": "googleapis.com",
    "account": "",
    "expiry": "2025-01-01T12:00:00.123456Z",
}


def test_the_files_token_uri_is_honoured_where_google_auth_would_drop_it() -> None:
    ours = credentials_from_info(TOKEN_JSON)
    theirs = Credentials.from_authorized_user_info(TOKEN_JSON)  # type: ignore[no-untyped-call]

    assert ours.token_uri == "http://127.0.0.1:1/token"
    assert theirs.token_uri == "https://oauth2.googleapis.com/token"
    assert ours.refresh_token == "1//0g-test" and ours.scopes == list(SCOPES)
    assert ours.expired  # 2025-01-01 is past


def test_a_token_without_expiry_is_refreshed_first() -> None:
    assert credentials_from_info({**TOKEN_JSON, "expiry": None}).expired


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("not json", "is not JSON", id="not_json"),
        pytest.param("[]", "is not a JSON object", id="a_list"),
        pytest.param(json.dumps({"token": "x"}), "lacks refresh_token", id="access_token_only"),
    ],
)
def test_a_bad_token_file_says_run_gmail_auth(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "token.json"
    path.write_text(content)

    with pytest.raises(ConfigError, match=message) as caught:
        read_token_file(path)
    assert "zakaz gmail-auth" in str(caught.value)


def test_the_token_transport_goes_nowhere_but_the_token_uri() -> None:
    with httpx.Client() as http:
        request = TokenEndpointRequest(http, "http://127.0.0.1:1/token")
        with pytest.raises(google.auth.exceptions.TransportError, match="only to"):
            request("https://iamcredentials.googleapis.com/v1/x", "GET")
        with pytest.raises(google.auth.exceptions.TransportError, match="ConnectError"):
            request("http://127.0.0.1:1/token", "POST", body=b"")


def test_a_deleted_oauth_client_is_an_auth_error(gmail_env: GmailSandbox) -> None:
    path = gmail_env.gmail_dir / "token.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "client_id": "0-gone.apps.googleusercontent.com"}))

    with httpx.Client() as http:
        token = TokenFile(path, http)
        with pytest.raises(AuthError, match="invalid_client") as caught:
            token.refresh()
    assert "credentials.json" in str(caught.value) and "zakaz gmail-auth" in str(caught.value)


def test_a_failing_token_endpoint_is_transient(gmail_env: GmailSandbox) -> None:
    gmail_env.control("google/faults", {"token_errors": 5, "status": 503})

    with httpx.Client() as http:
        token = TokenFile(gmail_env.gmail_dir / "token.json", http)
        with pytest.raises(TransientError, match="token endpoint"):
            token.refresh()


class ConsentStub:
    """Google's consent page and code exchange, as far as the installed-app flow uses them."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, str]] = []
        self.app = FastAPI()

        @self.app.get("/o/oauth2/auth")
        def consent(request: Request) -> RedirectResponse:
            params = request.query_params
            target = (
                params["redirect_uri"]
                + "?"
                + urlencode(
                    {"state": params["state"], "code": "4/0AQlEd-code", "scope": params["scope"]}
                )
            )
            return RedirectResponse(target, status_code=302)

        @self.app.post("/token")
        async def token(request: Request) -> JSONResponse:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self.exchanges.append(form)
            if (
                form.get("grant_type") != "authorization_code"
                or form.get("code") != "4/0AQlEd-code"
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(
                {
                    "access_token": "ya29.consented",
                    "expires_in": 3599,
                    "refresh_token": "1//0g-consented",
                    "scope": SCOPES[0],
                    "token_type": "Bearer",
                }
            )


class Browser:
    """What `webbrowser.get()` returns: opens the URL by following it, as a person would."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        threading.Thread(target=httpx.get, args=(url,), kwargs={"follow_redirects": True}).start()
        return True


@pytest.fixture
def consent(tmp_path: Path) -> Iterator[tuple[ConsentStub, Path]]:
    """A consent stub served on loopback and a GMAIL_DIR with its `credentials.json`."""
    stub = ConsentStub()
    with serving(stub.app) as base_url:
        gmail_dir = tmp_path / "gmail"
        gmail_dir.mkdir()
        client: dict[str, Any] = {
            "installed": {
                "client_id": "123-abc.apps.googleusercontent.com",
                "project_id": "zakaz-etl",
                "auth_uri": f"{base_url}/o/oauth2/auth",
                "token_uri": f"{base_url}/token",
                "client_secret": "GOCSPX-consent",
                "redirect_uris": ["http://localhost"],
            }
        }
        (gmail_dir / "credentials.json").write_text(json.dumps(client))
        yield stub, gmail_dir


def test_gmail_auth_runs_the_consent_and_writes_token_json_mode_600(
    consent: tuple[ConsentStub, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub, gmail_dir = consent
    browser = Browser()
    monkeypatch.setattr("webbrowser.get", lambda using=None: browser)

    path = gmail_auth(gmail_dir, port=0, open_browser=True)

    assert path == gmail_dir / "token.json"
    assert path.stat().st_mode & 0o777 == 0o600
    token = json.loads(path.read_text())
    assert token["refresh_token"] == "1//0g-consented" and token["token"] == "ya29.consented"
    assert (
        token["token_uri"]
        == json.loads((gmail_dir / "credentials.json").read_text())["installed"]["token_uri"]
    )
    assert token["scopes"] == list(SCOPES)
    [url] = browser.opened
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == list(SCOPES) and query["access_type"] == ["offline"]
    assert query["redirect_uri"][0].startswith("http://localhost:")
    [exchange] = stub.exchanges
    assert exchange["grant_type"] == "authorization_code"
    # What the consent wrote is what a run reads.
    assert credentials_from_info(read_token_file(path)).refresh_token == "1//0g-consented"


def test_gmail_auth_without_credentials_json_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Desktop app"):
        gmail_auth(tmp_path, open_browser=False)


def test_gmail_auth_with_a_bad_credentials_json(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text(json.dumps({"web": {}}))

    with pytest.raises(ConfigError, match="not an installed-app OAuth client"):
        gmail_auth(tmp_path, open_browser=False)
