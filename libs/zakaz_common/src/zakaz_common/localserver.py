"""Servers on loopback in a background thread: an ASGI app (the demo's sandbox, tests), and a
silent one that accepts connections and never answers (tests of deadlines and timeouts)."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import uvicorn


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on loopback in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def silent_server(accepted: threading.Event | None = None) -> Iterator[str]:
    """A TCP server on loopback that accepts every connection, reads what is sent and never
    answers (an upstream that hangs); yields its base URL, `http://127.0.0.1:PORT`.

    `accepted` is set once a client has connected (a test waiting for a run to be mid-request).
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.setblocking(False)
    port = int(listener.getsockname()[1])
    stop = threading.Event()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    held: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.05):
                sock = key.fileobj
                if not isinstance(sock, socket.socket):  # only sockets are registered
                    continue
                if sock is listener:
                    with suppress(OSError):  # a client gave up before the accept
                        conn, _ = listener.accept()
                        conn.setblocking(False)
                        held.append(conn)
                        selector.register(conn, selectors.EVENT_READ)
                        if accepted is not None:
                            accepted.set()
                    continue
                # Read and drop requests, so a client never blocks on a full send buffer; a
                # closed connection is forgotten.
                try:
                    data = sock.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    sock.close()

    thread = threading.Thread(target=loop, name=f"silent-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        selector.close()
        for conn in held:
            conn.close()
        listener.close()
