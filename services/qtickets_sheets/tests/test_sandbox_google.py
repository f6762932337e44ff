"""The sandbox's Google token endpoint and bearer check, as google-auth and plain HTTP see them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import google.auth.exceptions
import httpx
import pytest
from google.auth import crypt, jwt
from google.oauth2 import credentials as user_credentials
from sheets_support import SPREADSHEET_ID, SheetsSandbox
from zakaz_qtickets_sheets.transport import TokenEndpointRequest
from zakaz_sandbox.google_oauth import (
    GMAIL_READONLY,
    JWT_BEARER,
    SHEETS_READONLY,
    register_refresh_token,
    write_service_account_file,
)


def _token(sandbox: SheetsSandbox, form: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{sandbox.base_url}/token", data=form)


def _assertion(key: dict[str, Any], *, signer_key: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": key["client_email"],
        "aud": "https://oauth2.googleapis.com/token",
        "scope": SHEETS_READONLY,
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    signer = crypt.RSASigner.from_string(signer_key or key["private_key"], key["private_key_id"])
    return jwt.encode(signer, payload).decode()  # type: ignore[no-untyped-call,no-any-return]


@pytest.fixture
def key(sandbox: SheetsSandbox, tmp_path: Path) -> dict[str, Any]:
    """A service-account key file the sandbox issued, as JSON."""
    path = tmp_path / "sa.json"
    write_service_account_file(path, sandbox.base_url)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_the_key_file_looks_like_googles(key: dict[str, Any], sandbox: SheetsSandbox) -> None:
    assert key["type"] == "service_account"
    assert key["client_email"].endswith(".iam.gserviceaccount.com")
    assert key["private_key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert len(key["private_key_id"]) == 40 and key["client_id"].isdigit()
    assert key["token_uri"] == f"{sandbox.base_url}/token"


def test_a_signed_assertion_gets_an_access_token(
    key: dict[str, Any], sandbox: SheetsSandbox
) -> None:
    answer = _token(sandbox, {"grant_type": JWT_BEARER, "assertion": _assertion(key)})

    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["access_token"].startswith("ya29.")


@pytest.mark.parametrize(
    ("claims", "status", "error", "description"),
    [
        pytest.param(
            {"aud": "https://evil.example/token"},
            400,
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
            id="audience",
        ),
        pytest.param(
            {"exp": int(time.time()) + 7200},
            400,
            "invalid_grant",
            "Token must be a short-lived token",
            id="lifetime",
        ),
        pytest.param(
            {"iat": 1, "exp": 3000}, 400, "invalid_grant", "Check your iat and exp", id="expired"
        ),
        pytest.param({"scope": ""}, 400, "invalid_scope", "Invalid OAuth scope", id="no_scope"),
        pytest.param(
            {"iss": "nobody@x.iam.gserviceaccount.com"},
            400,
            "invalid_grant",
            "account not found",
            id="unknown_account",
        ),
    ],
)
def test_bad_assertions_get_googles_errors(
    key: dict[str, Any],
    sandbox: SheetsSandbox,
    claims: dict[str, Any],
    status: int,
    error: str,
    description: str,
) -> None:
    answer = _token(sandbox, {"grant_type": JWT_BEARER, "assertion": _assertion(key, **claims)})

    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert description in answer.json()["error_description"]


def test_an_assertion_signed_by_another_key_is_refused(
    key: dict[str, Any], sandbox: SheetsSandbox
) -> None:
    other = httpx.post(
        f"{sandbox.base_url}/_sandbox/google/service-accounts", json={"name": "other"}
    ).json()

    answer = _token(
        sandbox,
        {"grant_type": JWT_BEARER, "assertion": _assertion(key, signer_key=other["private_key"])},
    )

    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )


@pytest.mark.parametrize(
    ("form", "error"),
    [
        pytest.param({}, "invalid_request", id="no_grant_type"),
        pytest.param({"grant_type": "password"}, "unsupported_grant_type", id="unsupported"),
        pytest.param({"grant_type": JWT_BEARER}, "invalid_request", id="no_assertion"),
        pytest.param(
            {"grant_type": JWT_BEARER, "assertion": "not.a.jwt"}, "invalid_grant", id="garbage"
        ),
        pytest.param(
            {"grant_type": "refresh_token", "client_id": "x"},
            "invalid_request",
            id="refresh_missing",
        ),
    ],
)
def test_malformed_token_requests(sandbox: SheetsSandbox, form: dict[str, str], error: str) -> None:
    answer = _token(sandbox, form)

    assert answer.status_code == 400
    assert answer.json()["error"] == error


def test_refresh_grant_through_google_auth_and_its_failures(sandbox: SheetsSandbox) -> None:
    grant = register_refresh_token(sandbox.app, scopes=[GMAIL_READONLY])
    token_uri = f"{sandbox.base_url}/token"

    def creds(secret: str = grant.client_secret) -> user_credentials.Credentials:
        return user_credentials.Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=grant.refresh_token,
            token_uri=token_uri,
            client_id=grant.client_id,
            client_secret=secret,
            scopes=[GMAIL_READONLY],
        )

    good = creds()
    good.refresh(TokenEndpointRequest(token_uri))
    assert good.token.startswith("ya29.") and good.expiry is not None

    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_client"):
        creds("GOCSPX-wrong").refresh(TokenEndpointRequest(token_uri))
    sandbox.control("google/refresh-tokens/revoke", {"refresh_token": grant.refresh_token})
    with pytest.raises(
        google.auth.exceptions.RefreshError, match="Token has been expired or revoked"
    ):
        creds().refresh(TokenEndpointRequest(token_uri))


def test_injected_token_errors(key: dict[str, Any], sandbox: SheetsSandbox) -> None:
    sandbox.control(
        "google/faults",
        {
            "token_errors": 1,
            "status": 400,
            "error": "invalid_grant",
            "error_description": "Bad Request",
        },
    )

    first = _token(sandbox, {"grant_type": JWT_BEARER, "assertion": _assertion(key)})
    second = _token(sandbox, {"grant_type": JWT_BEARER, "assertion": _assertion(key)})

    assert (first.status_code, first.json()["error"]) == (400, "invalid_grant")
    assert second.status_code == 200


def _sheets(sandbox: SheetsSandbox, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{sandbox.base_url}/v4/spreadsheets/{SPREADSHEET_ID}", headers=headers)


def test_the_bearer_check_answers_like_google(key: dict[str, Any], sandbox: SheetsSandbox) -> None:
    gmail_only = register_refresh_token(sandbox.app, scopes=[GMAIL_READONLY])
    gmail_token = _token(
        sandbox,
        {
            "grant_type": "refresh_token",
            "client_id": gmail_only.client_id,
            "client_secret": gmail_only.client_secret,
            "refresh_token": gmail_only.refresh_token,
        },
    ).json()["access_token"]

    missing, bogus, wrong_scope = (
        _sheets(sandbox, None),
        _sheets(sandbox, "ya29.bogus"),
        _sheets(sandbox, gmail_token),
    )

    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert bogus.status_code == 401
    assert bogus.json()["error"]["errors"][0]["reason"] == "authError"
    assert wrong_scope.status_code == 403
    assert wrong_scope.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
