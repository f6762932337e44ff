"""Helpers of the gmail tests: the sandbox app, its control endpoints, and what it says is true."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from zakaz_sandbox import gmail, google_oauth

Key = tuple[date, str]


def sandbox_app(today: date | None = None) -> FastAPI:
    """Google's token endpoint and the Gmail API on one app, as the sandbox service mounts them."""
    app = FastAPI()
    app.include_router(google_oauth.create_router(today=today))
    app.include_router(gmail.create_router(today=today))
    return app


def most_recent_wins(messages: list[dict[str, Any]]) -> dict[Key, tuple[int, Decimal, str]]:
    """Sales per key from the truth of messages: the latest message having a key wins it."""
    won: dict[Key, tuple[int, tuple[int, Decimal, str]]] = {}
    for message in messages:
        for sale in message["sales"]:
            key = (date.fromisoformat(sale["sale_date"]), sale["event_id"])
            value = (sale["tickets_sold"], Decimal(sale["revenue"]), message["id"])
            if key not in won or message["internal_date"] > won[key][0]:
                won[key] = (message["internal_date"], value)
    return {key: value for key, (_, value) in won.items()}


@dataclass
class GmailSandbox:
    """A served sandbox, driven over HTTP like the demo drives it."""

    base_url: str
    app: FastAPI
    gmail_dir: Path = field(default_factory=lambda: Path("unset"))

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST to a control endpoint (`gmail/faults`, `google/expire-access-tokens`…)."""
        response = httpx.post(f"{self.base_url}/_sandbox/{path}", json=body or {}, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        """GET a control endpoint."""
        response = httpx.get(f"{self.base_url}/_sandbox/{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def write_gmail_dir(self, *, expired: bool = False) -> Path:
        """Write OAuth files the sandbox issues into `gmail_dir`."""
        return gmail.write_gmail_dir(self.gmail_dir, self.base_url, expired=expired)

    def token_file(self) -> dict[str, Any]:
        """The token file as it is now."""
        return json.loads((self.gmail_dir / "token.json").read_text())  # type: ignore[no-any-return]

    def truth(self, q: str = "") -> list[dict[str, Any]]:
        """Every message (matching `q`), newest first, with the sales a reader must find."""
        return self.get("gmail/truth", q=q)["messages"]  # type: ignore[no-any-return]

    def expected(self, q: str = "from:qtickets") -> dict[Key, tuple[int, Decimal, str]]:
        """(tickets, revenue, message id) per key of the messages `q` finds, latest winning."""
        return most_recent_wins(self.truth(q))

    def log(self) -> list[dict[str, Any]]:
        """Every Gmail API call served so far, with its kind and status."""
        return self.get("gmail/requests")["requests"]  # type: ignore[no-any-return]
