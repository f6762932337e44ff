"""Direct's error codes, translated into zakaz errors whose messages say what to fix."""

from __future__ import annotations

from typing import Final

from zakaz_common.errors import AuthError, PermanentError, TransientError, UpstreamError

#: Server-side trouble: the same request may well succeed in a moment.
TRANSIENT_CODES: Final = frozenset({52, 1000, 1001, 1002})

#: Too many requests at once or per period: wait and ask again.
THROTTLED_CODES: Final = frozenset({56, 506})

#: Too many offline reports queued for this advertiser (at most 5).
QUEUE_FULL: Final = 9000

#: Not enough API points (units) left today.
NO_UNITS: Final = 152

_AUTH_FIXES: Final = {
    53: "the OAuth token is invalid, expired or revoked: issue a new token for the app "
    "(oauth.yandex.ru) and set DIRECT_TOKEN",
    58: "the app behind DIRECT_TOKEN has an incomplete registration: submit the app's request "
    "for Direct API access and wait until it is approved",
    3000: "this account has no Direct API access: enable the API in Direct's web interface "
    "(Tools → API) for the account, or use a token of a user who has it",
}


class QueueFull(TransientError):
    """Five offline reports are already queued for the advertiser (error 9000)."""


def api_error(code: int, error_string: str, detail: str, *, login: str) -> UpstreamError:
    """The zakaz error for a Direct error body (`error_code`, `error_string`, `error_detail`)."""
    said = f"Direct error {code} ({error_string}: {detail})".replace(": )", ")")
    if code in _AUTH_FIXES:
        return AuthError(f"{said}: {_AUTH_FIXES[code]}")
    if code in {54, 513, 8800}:
        return AuthError(
            f"{said}: the token has no access to the advertiser {login!r}: set "
            "DIRECT_CLIENT_LOGIN to the advertiser's Direct login (a client of the agency whose "
            "token DIRECT_TOKEN is), or use the advertiser's own token"
        )
    if code == QUEUE_FULL:
        return QueueFull(f"{said}: five reports are already being built for {login!r}")
    if code in TRANSIENT_CODES or code in THROTTLED_CODES:
        return TransientError(f"{said}: Direct is busy or failing; retried later")
    if code == NO_UNITS:
        return TransientError(
            f"{said}: the day's API points are spent; the next run (or RQ's retry) continues"
        )
    return PermanentError(f"{said}: the request was refused; zakaz_direct needs a fix")
