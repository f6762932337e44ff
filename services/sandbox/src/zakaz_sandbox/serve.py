"""`zakaz serve sandbox`: the sandbox app over HTTP; with ZAKAZ_SANDBOX_SECRETS_DIR set, it also
writes the demo's settings there (compose profile `demo`) before it reports healthy."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import uvicorn

from zakaz_sandbox.app import create_app
from zakaz_sandbox.demo_env import source_settings, write_env_files


def serve(*, host: str, port: int) -> None:
    """Serve the sandbox until stopped."""
    app = create_app()
    secrets = os.environ.get("ZAKAZ_SANDBOX_SECRETS_DIR", "").strip()
    ready = threading.Event()
    if secrets:
        public = (
            os.environ.get("ZAKAZ_SANDBOX_PUBLIC_URL", "").strip() or f"http://127.0.0.1:{port}"
        )
        health = next(r for r in app.router.routes if getattr(r, "path", "") == "/healthz")
        app.router.routes.remove(health)

        @app.get("/healthz", include_in_schema=False)
        def healthz() -> dict[str, str]:
            from fastapi import HTTPException

            if not ready.is_set():
                raise HTTPException(503, "writing the demo settings")
            return {"status": "ok"}

        @app.on_event("startup")
        def _write() -> None:
            def work() -> None:
                # Credentials are issued through our own HTTP endpoints, asked on the URL the
                # sources will use, so the key file's token_uri names it.
                write_env_files(source_settings(public, Path(secrets)), Path(secrets))
                ready.set()

            threading.Timer(0.5, work).start()

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    stop = threading.Event()
    # In a thread uvicorn leaves signals alone: the main thread turns SIGTERM into a clean exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.run, name="sandbox-http")
    thread.start()
    while not stop.wait(0.5):
        if not thread.is_alive():
            raise SystemExit(1)
    server.should_exit = True
    thread.join(timeout=15)
