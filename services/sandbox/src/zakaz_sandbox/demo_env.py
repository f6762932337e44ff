"""The settings that point every source at a running sandbox, and the credential files they need.

The sandbox issues its own credentials: a service-account key for Sheets (registered with its
token endpoint), Gmail's OAuth client and refresh token, and the fixed tokens of QTickets, VK
and Direct. Used by `zakaz demo` (in process) and by `zakaz serve sandbox` for the compose demo
profile (written as `secrets/.env.<source>` files).

The files go where real secrets live (`.env.<source>`, `google/sa.json`, `gmail/…`), so the
sandbox keeps a record of what it wrote (`.sandbox-written.json`: path → SHA-256) and replaces
only its own files: any other file in its way stops it with the list, unless
`ZAKAZ_SANDBOX_OVERWRITE=1` says to replace them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

from zakaz_common.errors import ConfigError
from zakaz_common.manifest import CONTRACT_SOURCES

from zakaz_sandbox.direct_data import CLIENT_LOGIN, TOKEN
from zakaz_sandbox.gmail import write_gmail_dir
from zakaz_sandbox.google_oauth import write_service_account_file
from zakaz_sandbox.qtickets_data import SANDBOX_TOKEN
from zakaz_sandbox.sheets_data import SPREADSHEET_ID
from zakaz_sandbox.vk_data import ADVERTISER_CLIENT_ID, ADVERTISER_CLIENT_SECRET

#: The sandbox's record of the files it wrote, beside them.
WRITTEN_RECORD = ".sandbox-written.json"

#: Set to 1 to let the sandbox replace files it did not write.
OVERWRITE_VARIABLE = "ZAKAZ_SANDBOX_OVERWRITE"


def source_settings(base_url: str, secrets_dir: Path) -> dict[str, dict[str, str]]:
    """Per source, the env vars for a sandbox at `base_url`; writes the credential files.

    Raises ConfigError, writing nothing, when a file it would replace is not its own.
    """
    base = base_url.rstrip("/")
    refuse_foreign_files(secrets_dir)
    secrets_dir.mkdir(parents=True, exist_ok=True)
    key = secrets_dir / "google" / "sa.json"
    key.parent.mkdir(parents=True, exist_ok=True)
    write_service_account_file(key, base)
    gmail_dir = secrets_dir / "gmail"
    write_gmail_dir(gmail_dir, base)
    _remember(secrets_dir)
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
    _remember(secrets_dir)
    return written


def exports(settings: dict[str, dict[str, str]]) -> str:
    """The settings as shell `export` lines, one block per source."""
    blocks = []
    for source, values in settings.items():
        lines = [f"# {source}"] + [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def refuse_foreign_files(secrets_dir: Path) -> None:
    """ConfigError naming the files in the sandbox's way that it did not write (unless asked)."""
    if os.environ.get(OVERWRITE_VARIABLE, "").strip() in {"1", "true", "yes"}:
        return
    record = _recorded(secrets_dir)
    foreign = [
        path
        for path in _own_paths(secrets_dir)
        if path.is_file() and record.get(_name(secrets_dir, path)) != _digest(path)
    ]
    if foreign:
        names = ", ".join(str(p) for p in foreign[:6]) + (" …" if len(foreign) > 6 else "")
        raise ConfigError(
            f"the sandbox would replace files it did not write: {names}. Point "
            "ZAKAZ_SANDBOX_SECRETS_DIR at another directory, or set "
            f"{OVERWRITE_VARIABLE}=1 to replace them"
        )


def _own_paths(secrets_dir: Path) -> list[Path]:
    paths = [secrets_dir / f".env.{source}" for source in CONTRACT_SOURCES]
    paths.append(secrets_dir / "google" / "sa.json")
    gmail = secrets_dir / "gmail"
    if gmail.is_dir():
        paths.extend(sorted(p for p in gmail.iterdir() if p.is_file()))
    return paths


def _name(secrets_dir: Path, path: Path) -> str:
    return path.relative_to(secrets_dir).as_posix()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorded(secrets_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((secrets_dir / WRITTEN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _remember(secrets_dir: Path) -> None:
    """Record every file of the sandbox's set as it is now (they are all its own)."""
    record = {
        _name(secrets_dir, path): _digest(path)
        for path in _own_paths(secrets_dir)
        if path.is_file()
    }
    target = secrets_dir / WRITTEN_RECORD
    target.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    os.chmod(target, 0o600)
