"""One exception tree for zakaz; third-party errors are translated into it at module boundaries."""

from __future__ import annotations


class ZakazError(Exception):
    """Base of every error zakaz raises on purpose; its message is safe to log and show."""

    #: Whether retrying the same work later may succeed.
    transient: bool = False


class ConfigError(ZakazError):
    """A setting is missing or wrong; the message says which and how to fix it."""


class UpstreamError(ZakazError):
    """An upstream API answered with an error or not at all."""


class TransientError(UpstreamError):
    """Worth retrying: rate limits, 5xx, timeouts, queue-full answers."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the upstream asked us to wait, when it said so.
        self.retry_after = retry_after


class PermanentError(UpstreamError):
    """Retrying the same request will fail again (bad request, structural problem upstream)."""


class AuthError(PermanentError):
    """Credentials are missing, wrong, expired or lack access; a person has to act."""


class BadInput(ZakazError):
    """Input that cannot be read: a bad value in a row, or a structural problem in a payload."""


class BadValue(BadInput, ValueError):
    """One value cannot be parsed; the row goes to rejects with this message as the reason."""


class StructuralError(BadInput):
    """The shape of the input is wrong (a missing header, a missing tab); the run fails whole."""


class LoadError(ZakazError):
    """The warehouse refused or failed an operation."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        #: ClickHouse error code when the server reported one.
        self.code = code


class WarehouseBusy(LoadError):
    """The embedded warehouse is owned by another process."""


class LockBusy(ZakazError):
    """Another run of the same source holds the source lock."""
