"""The installed-app OAuth token of Gmail: consent once, then refresh and write back every run.

`token.json` is what `InstalledAppFlow` produces (`Credentials.to_json()`). google-auth's own
loaders (`Credentials.from_authorized_user_file`) replace the file's `token_uri` with Google's
endpoint, so the credentials are built here from the file's fields, `token_uri` included: a
sandbox (or any emulator) named there serves the refreshes. A refreshed token is written back
atomically with mode 600. Refreshes go through httpx, to the file's `token_uri` and nowhere else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import google.auth.exceptions
import google.auth.transport
import httpx
from google.oauth2.credentials import Credentials
from zakaz_common.deadline import Deadline
from zakaz_common.errors import AuthError, ConfigError, TransientError
from zakaz_common.redact import scrub

from zakaz_gmail.settings import CLIENT_FILE, CONSENT_FIX, TOKEN_FILE

log = logging.getLogger(__name__)

SCOPES: Final = ("https://www.googleapis.com/auth/gmail.readonly",)
"""Read-only: the source never changes the mailbox."""

_REQUIRED: Final = ("refresh_token", "client_id", "client_secret", "token_uri")
"""Fields a token file needs before it can be refreshed."""

CONNECT_TIMEOUT: Final = 5.0
"""Seconds to open a connection to the token endpoint."""

READ_TIMEOUT: Final = 30.0
"""Seconds the token endpoint may stay silent (it answers in well under a second when up)."""


class _Response(google.auth.transport.Response):
    """An httpx response as google-auth reads one."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""
        return self._response.headers

    @property
    def data(self) -> bytes:
        """The body."""
        return self._response.content


class TokenEndpointRequest(google.auth.transport.Request):
    """google-auth's transport over httpx, allowed to reach the token file's `token_uri` only;
    each request's timeouts are cut to the time `deadline` leaves."""

    def __init__(
        self,
        http: httpx.Client,
        token_uri: str,
        deadline: Deadline | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self._http = http
        self.token_uri = token_uri
        self.deadline = deadline or Deadline.unbounded()
        self._connect, self._read = connect_timeout, read_timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        """Send one token request; any other URL is refused."""
        if url.split("?", 1)[0] != self.token_uri:
            raise google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"zakaz sends google-auth requests only to token.json's token_uri, not {url}"
            )
        read = self._read if timeout is None else min(self._read, timeout)
        # google-auth retries a failing token endpoint itself: each try checks the deadline.
        limits = self.deadline.http_timeout(
            connect=self._connect, read=read, what="refreshing the Gmail access token"
        )
        try:
            response = self._http.request(
                method, url, content=body, headers=dict(headers or {}), timeout=limits
            )
        except httpx.TimeoutException as exc:
            if limits.read is not None and limits.read < read:
                # The deadline, not the endpoint's own timeout, cut the wait.
                raise self.deadline.exceeded("refreshing the Gmail access token", exc) from exc
            raise google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"{type(exc).__name__} from {self.token_uri}"
            ) from exc
        except httpx.HTTPError as exc:
            raise google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"{type(exc).__name__} from {self.token_uri}"
            ) from exc
        return _Response(response)


def read_token_file(path: Path) -> dict[str, Any]:
    """The token file's fields; a ConfigError naming what is wrong with it."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}; run `zakaz gmail-auth`") from None
    except ValueError:
        raise ConfigError(
            f"{path} is not JSON: run `zakaz gmail-auth` to write a new one"
        ) from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path} is not a JSON object: run `zakaz gmail-auth`")
    missing = [k for k in _REQUIRED if not info.get(k)]
    if missing:
        raise ConfigError(
            f"{path} lacks {', '.join(missing)}: it is not an installed-app token; "
            "run `zakaz gmail-auth` to write a new one"
        )
    return info


def credentials_from_info(info: Mapping[str, Any]) -> Credentials:
    """Credentials from token.json's fields, honouring its `token_uri` (google-auth would not)."""
    scopes = info.get("scopes") or list(SCOPES)
    if isinstance(scopes, str):
        scopes = scopes.split()
    expiry: datetime | None = None
    if info.get("expiry"):
        try:
            # google-auth keeps expiry as naive UTC.
            expiry = datetime.strptime(
                str(info["expiry"]).rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S"
            )
        except ValueError:
            expiry = None
    return Credentials(  # type: ignore[no-untyped-call]
        token=info.get("token") or None,
        refresh_token=info["refresh_token"],
        token_uri=info["token_uri"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        scopes=list(scopes),
        # No expiry known: treat the access token as expired, so the first call refreshes.
        expiry=expiry or datetime(1970, 1, 1),
        universe_domain=info.get("universe_domain") or "googleapis.com",
        account=info.get("account", ""),
    )


def write_private(path: Path, text: str) -> None:
    """Write a file atomically with mode 600 (its directory made 700 when created)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    path.chmod(0o600)


class TokenFile:
    """`GMAIL_DIR/token.json`: credentials to call Gmail with, refreshed and written back."""

    def __init__(
        self,
        path: Path,
        http: httpx.Client,
        deadline: Deadline | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.path = path
        self._info = read_token_file(path)
        self.credentials = credentials_from_info(self._info)
        self._request = TokenEndpointRequest(
            http,
            str(self._info["token_uri"]),
            deadline,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        #: Refreshes done by this instance.
        self.refreshes = 0

    def bearer(self) -> str:
        """A live access token, refreshed first when the file's has expired."""
        if not self.credentials.token or self.credentials.expired:
            self.refresh()
        return str(self.credentials.token)

    def refresh(self) -> None:
        """Refresh the access token at the file's `token_uri` and write the file back."""
        try:
            self.credentials.refresh(self._request)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as exc:
            raise _refresh_failed(exc, self.path) from None
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(
                f"cannot reach the token endpoint of {self.path} "
                f"({urlsplit(self._request.token_uri).netloc}): {scrub(str(exc))}"
            ) from None
        self.refreshes += 1
        self._save()

    def _save(self) -> None:
        fresh = json.loads(self.credentials.to_json())  # type: ignore[no-untyped-call]
        merged = {**self._info, **fresh}
        try:
            write_private(self.path, json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            # The refresh token is unchanged, so a file that cannot be written (a read-only
            # mount) costs one more refresh next run, not the run.
            log.warning(
                "Gmail access token refreshed but %s not written back (%s); the next run "
                "refreshes again",
                self.path,
                exc.strerror or type(exc).__name__,
            )
            return
        self._info = merged
        log.info("Gmail access token refreshed; %s written back", self.path)


def _refresh_failed(exc: google.auth.exceptions.RefreshError, path: Path) -> Exception:
    """The zakaz error for a refused refresh, branching on Google's error code."""
    body = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
    code = str(body.get("error", ""))
    described = str(body.get("error_description", "")) or (
        str(exc.args[0]) if exc.args else type(exc).__name__
    )
    if getattr(exc, "retryable", False):
        return TransientError(f"Google's token endpoint failed ({code or 'error'}): {described}")
    if code == "invalid_grant":
        return AuthError(
            f"Google refused the refresh token in {path} (invalid_grant: {described}): "
            f"{CONSENT_FIX}"
        )
    if code in {"invalid_client", "unauthorized_client"}:
        return AuthError(
            f"Google refused the OAuth client of {path} ({code}: {described}): the client was "
            f"deleted or its secret reset; download it again as {CLIENT_FILE} into GMAIL_DIR "
            "and run `zakaz gmail-auth`"
        )
    return AuthError(
        f"Google refused to refresh the token in {path} ({code or 'error'}: {described}): "
        "run `zakaz gmail-auth` to consent again"
    )


@contextlib.contextmanager
def _loopback_http_allowed(token_uri: str) -> Iterator[None]:
    """Let oauthlib exchange the code over plain HTTP, but only with a loopback endpoint."""
    host = urlsplit(token_uri).hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback or token_uri.startswith("https://"):
        yield
        return
    saved = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = saved


def gmail_auth(gmail_dir: Path, *, port: int = 0, open_browser: bool = True) -> Path:
    """One-time consent: run the installed-app flow with `GMAIL_DIR/credentials.json` and
    write `GMAIL_DIR/token.json` (mode 600); returns the token file's path.

    A browser opens Google's consent page (or, with `open_browser=False`, the URL is printed);
    Google redirects to a one-shot server on `localhost:port` (0: any free port).
    """
    from google_auth_oauthlib.flow import InstalledAppFlow  # type: ignore[import-untyped]

    client = gmail_dir.expanduser() / CLIENT_FILE
    if not client.is_file():
        raise ConfigError(
            f"{client} does not exist: in Google Cloud → APIs & Services → Credentials create an "
            'OAuth client ID of type "Desktop app", download its JSON and save it there'
        )
    try:
        flow = InstalledAppFlow.from_client_secrets_file(str(client), scopes=list(SCOPES))
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"{client} is not an installed-app OAuth client ({type(exc).__name__}): download "
            'the JSON of an OAuth client ID of type "Desktop app"'
        ) from None
    token_uri = str(flow.client_config.get("token_uri", ""))
    try:
        with _loopback_http_allowed(token_uri):
            credentials = flow.run_local_server(port=port, open_browser=open_browser)
    except Exception as exc:
        raise AuthError(
            f"the Gmail consent did not complete ({type(exc).__name__}: {scrub(str(exc))[:300]})"
        ) from None
    path = gmail_dir.expanduser() / TOKEN_FILE
    write_private(path, credentials.to_json() + "\n")
    return path
