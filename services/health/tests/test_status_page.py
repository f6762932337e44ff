"""The status page as a person sees it: headless Chromium renders it, a screenshot is kept."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from health_support import Runs
from rq import Worker
from zakaz_common.alerts import raise_alert
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.testing import serving
from zakaz_common.timeutil import MSK
from zakaz_health.app import create_app
from zakaz_health.queues import enabled_key

#: Where test artifacts go: `artifacts/` at the repository root (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "health"

#: Flags for a quiet, self-contained headless Chromium that reaches nothing but loopback.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The Chromium binary, or a failed test saying how to install it (never a skip)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed; `make test` installs it "
            "(apt-get install -y chromium), or install it yourself",
            pytrace=False,
        )
    return found


def run_chromium(args: list[str], profile: Path) -> str:
    """Run headless Chromium with a fresh profile; its stdout."""
    done = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def card(dom: str, source: str) -> str:
    """The opening tag of a source's card in the rendered DOM."""
    found = re.search(rf'<section class="card (\w+)" data-source="{source}"[^>]*>', dom)
    assert found, f"no card for {source}"
    return found.group(1)


def test_the_status_page_shows_each_source_and_a_red_card_for_a_failed_one(
    wh: Warehouse,
    redis_url: str,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
    tmp_path: Path,
) -> None:
    now = time.time()
    today = datetime_today()
    runs.add("qtickets_sheets", "success", finished_ago=7200, took=6, rows=1180, now=now)
    runs.add("qtickets_sheets", "success", finished_ago=240, took=5.2, rows=1204, now=now)
    runs.add(
        "qtickets_api", "success", finished_ago=20 * 60, took=41, rows=5310, rejected=4, now=now
    )
    runs.add("vk_ads", "success", finished_ago=86_400, took=95, rows=860, now=now)
    runs.add(
        "vk_ads",
        "error",
        finished_ago=900,
        took=3,
        message="VK Ads answered 401 Unauthorized: the client credentials were refused; "
        "check VK_CLIENT_ID / VK_CLIENT_SECRET",
        now=now,
    )
    runs.add("direct", "success", finished_ago=3 * 86_400, took=310, rows=2240, now=now)
    raise_alert(wh, "vk_ads", "run_failed", "error", "vk_ads run failed: VK Ads answered 401")
    raise_alert(
        wh, "direct", "stale", "warning", "Yandex Direct (direct): no successful load for 3 d"
    )
    wh.insert(
        "fact_qtickets_sales_daily",
        [
            (
                today - timedelta(days=1),
                "e1",
                "qtickets_sheets",
                "Show",
                "москва",
                3,
                Decimal(1500),
                0,
                "r1",
                int(now),
                1,
                0,
            )
        ],
        [
            "sale_date",
            "event_id",
            "source",
            "event_name",
            "city",
            "tickets_sold",
            "revenue",
            "row_hash",
            "run_id",
            "loaded_at",
            "_ver",
            "_deleted",
        ],
    )
    for source in ("qtickets_sheets", "qtickets_api", "vk_ads", "direct"):
        live_worker(source)
    conn.set(enabled_key("gmail"), "0")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)

    app = create_app(redis_url=redis_url, warehouse=wh, manifests=manifests)
    with serving(app) as base_url:
        dom = run_chromium(["--dump-dom", f"{base_url}/"], tmp_path / "profile-dom")
        run_chromium(
            [f"--screenshot={shot}", "--window-size=1280,1500", f"{base_url}/"],
            tmp_path / "profile-shot",
        )

    for title in ("QTickets Sheets", "QTickets API", "VK Ads", "Yandex Direct", "Gmail sales"):
        assert title in dom, title
    assert card(dom, "vk_ads") == "red"
    assert card(dom, "direct") == "red"
    assert card(dom, "qtickets_sheets") == "green"
    assert card(dom, "qtickets_api") == "amber"
    assert card(dom, "gmail") == "amber"
    assert "Last run failed" in dom
    assert "check VK_CLIENT_ID / VK_CLIENT_SECRET" in dom
    assert (today - timedelta(days=1)).isoformat() in dom
    alerts = dom[dom.index('id="alerts"') :]
    assert "run failed" in alerts and "stale" in alerts
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000


def datetime_today() -> date:
    """Today in Moscow."""
    from datetime import datetime

    return datetime.now(MSK).date()
