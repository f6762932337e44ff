"""`zakaz serve sandbox`: the sandbox app over HTTP, and the settings that point every source at it.

Without ZAKAZ_SANDBOX_SECRETS_DIR it prints them as `export` lines (credential files under
`ZAKAZ_DATA_DIR/sandbox-secrets`); with it, it writes `.env.<source>` files there (compose
profile `demo`) and names them. Either way it reports healthy only once they exist, and never
replaces a file it did not write (see `demo_env`)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import uvicorn
from zakaz_common.settings import CoreSettings, load_settings

from zakaz_sandbox.app import create_app
from zakaz_sandbox.demo_env import exports, refuse_foreign_files, source_settings, write_env_files


def serve(*, host: str, port: int) -> None:
    """Serve the sandbox until stopped; say (or write) the settings that point sources at it."""
    app = create_app()
    public = os.environ.get("ZAKAZ_SANDBOX_PUBLIC_URL", "").strip() or f"http://127.0.0.1:{port}"
    secrets = os.environ.get("ZAKAZ_SANDBOX_SECRETS_DIR", "").strip()
    target = Path(secrets) if secrets else load_settings(CoreSettings).data_dir / "sandbox-secrets"
    refuse_foreign_files(target)  # before serving: a refusal is the command's one error line
    ready = threading.Event()
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
            settings = source_settings(public, target)
            if secrets:
                written = write_env_files(settings, target)
                _say(f"sandbox upstreams at {public}; the sources' settings are written to:")
                _say("".join(f"  {path}\n" for path in written).rstrip())
            else:
                _say(f"sandbox upstreams at {public}; point the sources at them with:")
                _say(exports(settings))
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


def _say(text: str) -> None:
    print(text, flush=True)
