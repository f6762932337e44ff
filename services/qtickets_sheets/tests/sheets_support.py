"""Helpers of the qtickets_sheets tests: the sandbox app, its control endpoints, its truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from zakaz_sandbox import google_oauth, sheets
from zakaz_sandbox.sheets_data import SPREADSHEET_ID

__all__ = ["SPREADSHEET_ID", "SheetsSandbox", "sandbox_app"]


def sandbox_app(today: date | None = None) -> FastAPI:
    """Google's token endpoint and the Sheets API on one app, as the sandbox service mounts them."""
    app = FastAPI()
    app.include_router(google_oauth.create_router(today=today))
    app.include_router(sheets.create_router(today=today))
    return app


@dataclass
class SheetsSandbox:
    """A served sandbox, driven over HTTP like the demo drives it."""

    base_url: str
    app: FastAPI

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST to a control endpoint (`sheets/faults`, `google/expire-access-tokens`…)."""
        response = httpx.post(f"{self.base_url}/_sandbox/{path}", json=body or {}, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        """GET a control endpoint."""
        response = httpx.get(f"{self.base_url}/_sandbox/{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def truth(self) -> dict[str, Any]:
        """What the generated sheet says, read correctly."""
        return self.get("sheets/truth")  # type: ignore[no-any-return]

    def log(self) -> list[dict[str, Any]]:
        """Every Sheets API request served so far, with its status."""
        return self.get("sheets/requests")["requests"]  # type: ignore[no-any-return]

    def expected_sales(self) -> dict[tuple[date, str], tuple[int, Decimal]]:
        """Tickets and revenue per (sale_date, event_id) of the generated sheet."""
        return {
            (date.fromisoformat(s["sale_date"]), s["event_id"]): (
                s["tickets_sold"],
                Decimal(s["revenue"]),
            )
            for s in self.truth()["sales"]
        }

    def sales_rows(self) -> dict[tuple[date, str], list[int]]:
        """Sheet row numbers of each sales key."""
        return {
            (date.fromisoformat(s["sale_date"]), s["event_id"]): s["rows"]
            for s in self.truth()["sales"]
        }
