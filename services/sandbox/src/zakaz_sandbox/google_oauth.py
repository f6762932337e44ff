"""Google's OAuth 2.0 token endpoint (`POST /token`) and the bearer check of Google APIs.

Both grants the ETL uses are served, with Google's bodies and status codes:
- `urn:ietf:params:oauth:grant-type:jwt-bearer`: a service account's RS256 assertion (what
  `google.oauth2.service_account.Credentials` sends), verified against the public key of a key
  the sandbox generated (`POST /_sandbox/google/service-accounts` or
  `write_service_account_file`); the key file's `token_uri` points here;
- `refresh_token`: an installed-app client's refresh (what `google.oauth2.credentials.Credentials`
  sends), for refresh tokens registered with `register_refresh_token`.

The state is one `GoogleOAuthState` per app (`oauth_state(app)`), so every Google router mounted
on the same app (Sheets, Gmail) accepts the tokens issued here. For another Google router:

    router = APIRouter(route_class=GoogleErrorRoute)       # errors as Google's JSON
    Token = Annotated[TokenInfo, Depends(require_token(GMAIL_READONLY))]
    @router.get("/gmail/v1/users/me/messages")
    def messages(token: Token) -> ...: ...                 # 401/403 as Google answers
    grant = register_refresh_token(app, scopes=[GMAIL_READONLY])   # for token.json

Service-account key files: `write_service_account_file(path, base_url)` asks a running sandbox
over HTTP; inside the sandbox's own process `oauth_state(app).create_service_account(
token_uri=f"{public_url}/token")` returns the same JSON.

Control endpoints (`/_sandbox/google/...`): create or delete service accounts, register or revoke
refresh tokens, expire every access token, make the next N token requests fail, read counters.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qsl

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.applications import Starlette

JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
"""The grant type of a service account's signed assertion."""

GOOGLE_TOKEN_AUDIENCE: Final = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
"""google-auth signs this audience whatever `token_uri` the key file names."""

TOKEN_LIFETIME: Final = 3599
"""Seconds an access token lives; Google answers `expires_in: 3599`."""

_MAX_ASSERTION_LIFETIME: Final = 3600
"""Google refuses assertions valid for longer than an hour."""

_CLOCK_SKEW: Final = 300
"""Seconds of clock difference tolerated on `iat`/`exp`."""

SHEETS_READONLY: Final = "https://www.googleapis.com/auth/spreadsheets.readonly"
GMAIL_READONLY: Final = "https://www.googleapis.com/auth/gmail.readonly"

_UNAUTHENTICATED: Final = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_MISSING: Final = _UNAUTHENTICATED.replace(
    "Request had invalid authentication credentials",
    "Request is missing required authentication credential",
)


class GoogleApiError(Exception):
    """An error a Google API answers with: `{"error": {"code", "message", "status", ...}}`."""

    def __init__(
        self,
        code: int,
        message: str,
        status: str,
        *,
        reason: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.reason, self.errors, self.headers = reason, errors, dict(headers or {})

    def response(self) -> JSONResponse:
        """The error as Google's JSON body."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        body["status"] = self.status
        if self.reason:
            body["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": self.reason,
                    "domain": "googleapis.com",
                }
            ]
        return JSONResponse({"error": body}, status_code=self.code, headers=self.headers)


class GoogleErrorRoute(APIRoute):
    """A route whose `GoogleApiError`s (raised in handlers or dependencies) answer as Google's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, translating `GoogleApiError` into its response."""
        handler = super().get_route_handler()

        async def google_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except GoogleApiError as exc:
                return exc.response()

        return google_handler


@dataclass(frozen=True)
class TokenInfo:
    """Who an access token was issued to and for what."""

    subject: str
    scopes: frozenset[str]
    expires_at: float
    kind: Literal["service_account", "user"]


@dataclass(frozen=True)
class RefreshGrant:
    """An installed-app client and one refresh token of it (what `token.json` holds)."""

    client_id: str
    client_secret: str
    refresh_token: str
    scopes: tuple[str, ...]
    account: str


@dataclass
class _ServiceAccount:
    email: str
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)


class OAuthError(Exception):
    """A token-endpoint error: `{"error", "error_description"}` with its HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class GoogleOAuthState:
    """Service accounts, OAuth clients, refresh and access tokens of one sandbox app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, _ServiceAccount] = {}
        self._clients: dict[str, str] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._access: dict[str, TokenInfo] = {}
        self._fail_next: list[tuple[int, str, str]] = []
        self.token_requests: dict[str, int] = {}

    def create_service_account(
        self, *, token_uri: str, name: str = "qtickets-sheets", project_id: str = "zakaz-etl-demo"
    ) -> dict[str, str]:
        """A new service-account key (Google's key-file JSON); its public half is kept here."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        email = f"{name}@{project_id}.iam.gserviceaccount.com"
        with self._lock:
            account = self._accounts.setdefault(email, _ServiceAccount(email))
            account.keys[key_id] = private.public_key()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        client_id = str(100_000_000_000_000_000_000 + secrets.randbelow(10**20))
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }

    def delete_service_account(self, email: str) -> bool:
        """Forget a service account (its tokens stop refreshing: `account not found`)."""
        with self._lock:
            return self._accounts.pop(email, None) is not None

    def register_refresh_token(
        self,
        *,
        scopes: Iterable[str],
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        account: str = "reports@example-events.ru",
    ) -> RefreshGrant:
        """Register an OAuth client (made up when not given) and a refresh token of it."""
        grant = RefreshGrant(
            client_id=client_id
            or f"{secrets.randbelow(10**12):012d}-{secrets.token_hex(16)}.apps.googleusercontent.com",
            client_secret=client_secret or "GOCSPX-" + secrets.token_urlsafe(21),
            refresh_token=refresh_token or "1//0g" + secrets.token_urlsafe(70),
            scopes=tuple(scopes),
            account=account,
        )
        with self._lock:
            self._clients[grant.client_id] = grant.client_secret
            self._refresh[grant.refresh_token] = grant
        return grant

    def revoke_refresh_token(self, refresh_token: str) -> bool:
        """Revoke a refresh token (the next refresh answers `invalid_grant`)."""
        with self._lock:
            return self._refresh.pop(refresh_token, None) is not None

    def issue(
        self, subject: str, scopes: Iterable[str], kind: Literal["service_account", "user"]
    ) -> str:
        """A new access token for a subject."""
        token = "ya29.c." + secrets.token_urlsafe(96)
        info = TokenInfo(subject, frozenset(scopes), time.time() + TOKEN_LIFETIME, kind)
        with self._lock:
            self._access[token] = info
        return token

    def verify(self, token: str) -> TokenInfo | None:
        """The live token's info, or None when unknown or expired."""
        with self._lock:
            info = self._access.get(token)
        return info if info is not None and info.expires_at > time.time() else None

    def expire_access_tokens(self) -> int:
        """Make every issued access token expired now (clients must refresh)."""
        with self._lock:
            for token, info in self._access.items():
                self._access[token] = TokenInfo(info.subject, info.scopes, 0.0, info.kind)
            return len(self._access)

    def access_tokens(self) -> list[str]:
        """Every access token issued so far (for tests that look for leaks)."""
        with self._lock:
            return list(self._access)

    def fail_next_token_requests(
        self, count: int, status: int, error: str, description: str
    ) -> None:
        """Answer the next `count` token requests with this OAuth error."""
        with self._lock:
            self._fail_next = [(status, error, description)] * count

    def grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Serve one token request (form fields as sent) or raise `OAuthError`."""
        grant_type = form.get("grant_type", "")
        with self._lock:
            self.token_requests[grant_type] = self.token_requests.get(grant_type, 0) + 1
            fault = self._fail_next.pop() if self._fail_next else None
        if fault is not None:
            raise OAuthError(*fault)
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _jwt_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError(400, "invalid_request", "Missing required parameter: assertion")
        header, claims, signed, signature = _split_jwt(assertion)
        with self._lock:
            account = self._accounts.get(str(claims.get("iss", "")))
            keys = dict(account.keys) if account else {}
        if account is None:
            raise OAuthError(400, "invalid_grant", "Invalid grant: account not found")
        key = keys.get(str(header.get("kid", "")))
        if header.get("alg") != "RS256" or key is None:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        _check_lifetime(claims)
        scopes = str(claims.get("scope", "")).split()
        if not scopes:
            raise OAuthError(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        token = self.issue(account.email, scopes, "service_account")
        return {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}

    def _refresh_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        for name in ("client_id", "client_secret", "refresh_token"):
            if not form.get(name):
                raise OAuthError(400, "invalid_request", f"Missing required parameter: {name}")
        with self._lock:
            secret = self._clients.get(form["client_id"])
            grant = self._refresh.get(form["refresh_token"])
        if secret is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not secrets.compare_digest(secret, form["client_secret"]):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        if grant is None or grant.client_id != form["client_id"]:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = form.get("scope", "").split() or list(grant.scopes)
        if not set(scopes) <= set(grant.scopes):
            raise OAuthError(400, "invalid_scope", "Bad Request")
        token = self.issue(grant.account, scopes, "user")
        return {
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _split_jwt(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        head, body, sig = assertion.split(".")
        header, claims = json.loads(_b64url(head)), json.loads(_b64url(body))
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("not JSON objects")
        return header, claims, f"{head}.{body}".encode(), _b64url(sig)
    except (ValueError, UnicodeDecodeError):
        raise OAuthError(400, "invalid_grant", "Invalid JWT: malformed assertion.") from None


def _check_lifetime(claims: Mapping[str, Any]) -> None:
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if (
        not isinstance(iat, int | float)
        or not isinstance(exp, int | float)
        or exp - iat > _MAX_ASSERTION_LIFETIME
        or iat > now + _CLOCK_SKEW
        or exp < now - _CLOCK_SKEW
    ):
        raise OAuthError(
            400,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim.",
        )


def oauth_state(app: Starlette) -> GoogleOAuthState:
    """The Google OAuth state of an app (made on first use, shared by every Google router)."""
    state = getattr(app.state, "zakaz_google_oauth", None)
    if state is None:
        state = GoogleOAuthState()
        app.state.zakaz_google_oauth = state
    return state


def register_refresh_token(
    app: Starlette,
    *,
    scopes: Iterable[str],
    client_id: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
    account: str = "reports@example-events.ru",
) -> RefreshGrant:
    """Register an installed-app client and a refresh token in an app's token endpoint."""
    return oauth_state(app).register_refresh_token(
        scopes=scopes,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        account=account,
    )


def write_service_account_file(path: Path, base_url: str, *, name: str = "qtickets-sheets") -> str:
    """Ask a running sandbox for a new service-account key and write it (mode 600); its email."""
    response = httpx.post(
        f"{base_url.rstrip('/')}/_sandbox/google/service-accounts", json={"name": name}, timeout=30
    )
    response.raise_for_status()
    key = response.json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(key, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return str(key["client_email"])


def require_token(*scopes: str) -> Callable[[Request], TokenInfo]:
    """A dependency: the request's valid bearer token with one of `scopes`, else Google's 401/403."""

    def dependency(request: Request) -> TokenInfo:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise GoogleApiError(
                401, _MISSING, "UNAUTHENTICATED", reason="CREDENTIALS_MISSING", headers=challenge
            )
        info = oauth_state(request.app).verify(token.strip())
        if info is None:
            raise GoogleApiError(
                401,
                _UNAUTHENTICATED,
                "UNAUTHENTICATED",
                reason="ACCESS_TOKEN_EXPIRED",
                errors=[
                    {
                        "message": "Invalid Credentials",
                        "domain": "global",
                        "reason": "authError",
                        "location": "Authorization",
                        "locationType": "header",
                    }
                ],
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                    'error="invalid_token"'
                },
            )
        if scopes and not info.scopes & set(scopes):
            raise GoogleApiError(
                403,
                "Request had insufficient authentication scopes.",
                "PERMISSION_DENIED",
                reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            )
        return info

    return dependency


def create_router(*, today: date | None = None) -> APIRouter:
    """Google's token endpoint and its control endpoints (`today` is unused: tokens are timeless)."""
    del today
    router = APIRouter()

    @router.post("/token", include_in_schema=False)
    async def token(request: Request) -> JSONResponse:
        raw = (await request.body()).decode("utf-8", "replace")
        if request.headers.get("content-type", "").startswith("application/json"):
            loaded = json.loads(raw or "{}")
            form = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        else:
            form = dict(parse_qsl(raw))
        try:
            body = oauth_state(request.app).grant(form)
        except OAuthError as exc:
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=exc.status
            )
        return JSONResponse(body, headers={"Cache-Control": "no-cache, no-store, max-age=0"})

    @router.post("/_sandbox/google/service-accounts")
    def new_service_account(
        request: Request, body: Annotated[dict[str, str] | None, Body()] = None
    ) -> dict[str, str]:
        """A new service-account key file whose `token_uri` is this sandbox's `/token`."""
        options = body or {}
        return oauth_state(request.app).create_service_account(
            token_uri=str(request.base_url).rstrip("/") + "/token",
            name=options.get("name", "qtickets-sheets"),
            project_id=options.get("project_id", "zakaz-etl-demo"),
        )

    @router.delete("/_sandbox/google/service-accounts/{email}")
    def delete_service_account(request: Request, email: str) -> dict[str, bool]:
        """Delete a service account: its next token request answers `account not found`."""
        return {"deleted": oauth_state(request.app).delete_service_account(email)}

    @router.post("/_sandbox/google/refresh-tokens")
    def new_refresh_token(
        request: Request, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Register an installed-app client and refresh token; returns a `token.json` body."""
        grant = oauth_state(request.app).register_refresh_token(
            scopes=body.get("scopes") or [GMAIL_READONLY],
            account=body.get("account", "reports@example-events.ru"),
        )
        return {
            "refresh_token": grant.refresh_token,
            "token_uri": str(request.base_url).rstrip("/") + "/token",
            "client_id": grant.client_id,
            "client_secret": grant.client_secret,
            "scopes": list(grant.scopes),
        }

    @router.post("/_sandbox/google/refresh-tokens/revoke")
    def revoke(request: Request, body: Annotated[dict[str, str], Body()]) -> dict[str, bool]:
        """Revoke a refresh token (as a password change or 7-day testing expiry would)."""
        return {"revoked": oauth_state(request.app).revoke_refresh_token(body["refresh_token"])}

    @router.post("/_sandbox/google/expire-access-tokens")
    def expire(request: Request) -> dict[str, int]:
        """Expire every access token now: the next API call answers 401."""
        return {"expired": oauth_state(request.app).expire_access_tokens()}

    @router.post("/_sandbox/google/faults")
    def faults(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        """Fail the next `token_errors` token requests (default 503 `temporarily_unavailable`)."""
        count = int(body.get("token_errors", 1))
        status = int(body.get("status", 503))
        error = str(body.get("error", "temporarily_unavailable"))
        oauth_state(request.app).fail_next_token_requests(
            count, status, error, str(body.get("error_description", "Service unavailable."))
        )
        return {"token_errors": count}

    @router.get("/_sandbox/google/stats")
    def stats(request: Request) -> dict[str, Any]:
        """Token requests by grant type, and every access token issued (to look for leaks)."""
        state = oauth_state(request.app)
        return {
            "token_requests": dict(state.token_requests),
            "access_tokens": state.access_tokens(),
        }

    return router
