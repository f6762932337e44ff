"""One app serving every stand-in upstream at its real base path, plus `/healthz`.

Google (token endpoint, Sheets, Gmail) `/token`, `/v4/spreadsheets`, `/gmail/v1`; QTickets
`/api/rest/v1`; VK Ads `/api/v2`; Yandex Direct `/json/v5`. Each router keeps its own state,
and the control endpoints live under `/_sandbox/<upstream>/`.
"""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI

from zakaz_sandbox import direct, gmail, google_oauth, qtickets, sheets, vk


def create_app(*, today: date | None = None) -> FastAPI:
    """The sandbox app; `today` fixes the season's reference day (default: today in Moscow)."""
    app = FastAPI(title="zakaz sandbox upstreams", version="1")
    for module in (google_oauth, sheets, gmail, qtickets, vk, direct):
        app.include_router(module.create_router(today=today))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
