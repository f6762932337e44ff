"""A cap on request bodies, enforced before any route parses them (413 over `MAX_BODY_BYTES`).

The control API's bodies are a few fields of JSON; without a cap, a 20 MB body is read into
memory and parsed as JSON. `BodyLimit` is plain ASGI middleware: it refuses a declared
`Content-Length` over the cap at once, and reads a body sent without one (chunked) only up to
the cap, so neither a lying header nor a stream gets more than the cap into the process.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Largest request body accepted: a run request is under 200 bytes; 64 KB leaves room and
#: still bounds what one request may make the service hold and parse.
MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """ASGI middleware answering 413 to a request whose body is over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then buffer the body up to the cap before the app runs."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None:
            await _refuse(400, "Content-Length is not a whole number", scope, receive, send)
            return
        if declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see it
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(buffered, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _refuse(413, f"the request body is over {self.max_bytes} bytes", scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length (0 when none is declared), None when it is not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return 0


async def _refuse(code: int, detail: str, scope: Scope, receive: Receive, send: Send) -> None:
    # Connection: close, so the server drops the unread rest of the body instead of reading it.
    response = JSONResponse({"detail": detail}, status_code=code, headers={"Connection": "close"})
    await response(scope, receive, send)


def _replay(buffered: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands out the buffered messages, then the real ones (disconnects)."""
    pending = list(buffered)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
