"""The settings that point every source at a running sandbox, and the credential files they need.

The sandbox issues its own credentials: a service-account key for Sheets (registered with its
token endpoint), Gmail's OAuth client and refresh token, and the fixed tokens of QTickets, VK
and Direct. Used by `zakaz demo` (in process) and by `zakaz serve sandbox` for the compose demo
profile (written as `secrets/.env.<source>` files).
"""

from __future__ import annotations

import os
from pathlib import Path

from zakaz_sandbox.direct_data import CLIENT_LOGIN, TOKEN
from zakaz_sandbox.gmail import write_gmail_dir
from zakaz_sandbox.google_oauth import write_service_account_file
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN
from zakaz_sandbox.sheets_data import SPREADSHEET_ID
from zakaz_sandbox.vk_data import ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET


def source_settings(base_url: str, secrets_dir: Path) -> dict[str, dict[str, str]]:
    """Per source, the env vars for a sandbox at `base_url`; writes the credential files."""
    base = base_url.rstrip("/")
    secrets_dir.mkdir(parents=True, exist_ok=True)
    key = secrets_dir / "google" / "sa.json"
    key.parent.mkdir(parents=True, exist_ok=True)
    write_service_account_file(key, base)
    gmail_dir = secrets_dir / "gmail"
    write_gmail_dir(gmail_dir, base)
    return {
        "qtickets_sheets": {
            "GSERVICE_JSON": str(key),
            "SHEET_ID_EVENTS": SPREADSHEET_ID,
            "SHEET_ID_INVENTORY": SPREADSHEET_ID,
            "SHEET_ID_SALES": SPREADSHEET_ID,
            "SHEETS_API_URL": base,
        },
        "qtickets_api": {
            "QTICKETS_BASE_URL": f"{base}/api/rest/v1",
            "QTICKETS_TOKEN": SANDBOX_TOKEN,
        },
        "vk_ads": {
            "VK_API_URL": base,
            "VK_CLIENT_ID": ADVERTISER_CLIENT_ID,
            "VK_CLIENT_SECRET": ADVERTISER_CLIENT_SECRET,
        },
        "direct": {
            "DIRECT_API_URL": f"{base}/json/v5",
            "DIRECT_TOKEN": TOKEN,
            "DIRECT_CLIENT_LOGIN": CLIENT_LOGIN,
        },
        "gmail": {"GMAIL_API_URL": base, "GMAIL_DIR": str(gmail_dir)},
    }


def write_env_files(settings: dict[str, dict[str, str]], secrets_dir: Path) -> list[Path]:
    """Write `.env.<source>` files (mode 600) holding each source's settings."""
    written = []
    for source, values in settings.items():
        path = secrets_dir / f".env.{source}"
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        os.chmod(path, 0o600)
        written.append(path)
    return written
