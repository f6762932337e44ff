"""The status page as a person sees it: headless Chromium renders it, a screenshot is kept."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest
import redis
from health_support import Runs, add_sale, add_vk_spend
from rq import Worker
from zakaz_common import clock
from zakaz_common.alerts import raise_alert
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest
from zakaz_common.marts import refresh_marts
from zakaz_common.runs import record_run
from zakaz_common.testing import serving
from zakaz_health.app import create_app
from zakaz_health.figures import moscow_day
from zakaz_health.queues import enabled_key
from zakaz_health.settings import PageSettings

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
    """The colour of a source's card in the rendered DOM."""
    found = re.search(rf'<section class="card (\w+)" data-source="{source}"[^>]*>', dom)
    assert found, f"no card for {source}"
    return found.group(1)


def card_html(dom: str, source: str) -> str:
    """A source's whole card in the rendered DOM."""
    found = re.search(rf'<section class="card \w+" data-source="{source}".*?</section>', dom, re.S)
    assert found, f"no card for {source}"
    return found.group(0)


def text(html: str) -> str:
    """What a person reads of some HTML without clicking: tags and `<details>` dropped."""
    visible = re.sub(r"<details>.*?</details>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", visible)).split())


def details(html: str) -> list[str]:
    """The texts behind the clicks (`<details>`) of some HTML."""
    return [
        unescape(re.sub(r"<[^>]+>", " ", d))
        for d in re.findall(r"<details>(.*?)</details>", html, re.S)
    ]


def history_rows(dom: str) -> list[str]:
    """The rows of the recent-runs table, as the HTML of each."""
    table = dom[dom.index('id="runs"') :]
    return re.findall(r"<tr[^>]*>(.*?)</tr>", table[table.index("<tbody>") :], re.S)


RAW_REFUSED = (
    "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /api/v2 "
    "(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f3a>: "
    "Failed to establish a new connection: [Errno 111] Connection refused')) token=abc123secret"
)


def add_backfill(wh: Warehouse, source: str, first: date, chunks: int, now: float) -> None:
    """Chunks as `zakaz backfill` records them: one run a day, trigger `backfill`, 40 s apart."""
    start = now - 6 * 3600
    for n in range(chunks):
        day = (first + timedelta(days=n)).isoformat()
        failed = n == 1
        record_run(
            wh,
            run_id=f"bf-{source}-{n}",
            job=source,
            status="error" if failed else "success",
            started_at=start + 40 * n,
            finished_at=start + 40 * n + 30,
            rows_processed=0 if failed else 100,
            message=RAW_REFUSED if failed else "",
            metrics={"duration_ms": 30_000},
            params={"since": day, "to": day, "days": None, "dry_run": False},
            trigger="backfill",
        )


def test_the_status_page_in_a_failing_state_is_red_with_one_sentence_and_the_detail_a_click_away(
    wh: Warehouse,
    redis_url: str,
    conn: redis.Redis,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
    tmp_path: Path,
) -> None:
    now = time.time()
    today = moscow_day(now)
    runs.add("qtickets_sheets", "success", finished_ago=7200, took=6, rows=1180, now=now)
    runs.add("qtickets_sheets", "success", finished_ago=240, took=5.2, rows=1204, now=now)
    runs.add(
        "qtickets_api", "success", finished_ago=20 * 60, took=41, rows=5310, rejected=4, now=now
    )
    runs.add("vk_ads", "success", finished_ago=86_400, took=95, rows=860, now=now)
    add_backfill(wh, "vk_ads", date(2026, 8, 1), 5, now)
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
    add_sale(wh, today - timedelta(days=1), "e1", Decimal(1500), tickets=3)
    refresh_marts(wh)
    # vk_ads has no worker: failed, alerted and without a worker, it is red three times over.
    for source in ("qtickets_sheets", "qtickets_api", "direct"):
        live_worker(source)
    conn.set(enabled_key("gmail"), "0")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)

    app = create_app(
        redis_url=redis_url, warehouse=wh, manifests=manifests, page_settings=PageSettings()
    )
    with serving(app) as base_url:
        dom = run_chromium(["--dump-dom", f"{base_url}/"], tmp_path / "profile-dom")
        run_chromium(
            [f"--screenshot={shot}", "--window-size=1280,1700", f"{base_url}/"],
            tmp_path / "profile-shot",
        )

    for title in ("QTickets Sheets", "QTickets API", "VK Ads", "Yandex Direct", "Gmail sales"):
        assert title in dom, title
    assert card(dom, "vk_ads") == "red"
    assert card(dom, "direct") == "red"
    assert card(dom, "qtickets_sheets") == "green"
    assert card(dom, "qtickets_api") == "amber"
    assert card(dom, "gmail") == "grey"
    vk = card_html(dom, "vk_ads")
    assert "Last run failed" in text(vk)
    assert "VK Ads refused our credentials: check the source's token or key in its settings." in (
        text(vk)
    )
    assert "Worker none alive" in text(vk)
    assert "Also: open alert: run failed · worker dead" in text(vk)
    assert "VK_CLIENT_ID" not in text(vk)
    assert any("check VK_CLIENT_ID / VK_CLIENT_SECRET" in d for d in details(vk))
    assert "No successful load for 3 d" in text(card_html(dom, "direct"))
    assert (today - timedelta(days=1)).isoformat() in dom
    alerts = dom[dom.index('id="alerts"') : dom.index('id="runs"')]
    assert "run failed" in alerts and "stale" in alerts
    assert "VK Ads refused our credentials" in text(alerts)

    rows = history_rows(dom)
    backfills = [r for r in rows if "backfill" in text(r)]
    assert len(backfills) == 1, [text(r) for r in rows]
    line = text(backfills[0])
    assert "backfill 2026-08-01 … 2026-08-05 · 4/5 chunks ok, 1 failed" in line
    assert "VK Ads could not be reached: the connection failed." in line
    assert "400" in line  # rows of the four chunks that loaded
    assert "HTTPConnectionPool" not in text(dom)
    assert any("Max retries exceeded" in d for d in details(backfills[0]))
    assert "abc123secret" not in dom
    # qtickets_sheets 2, qtickets_api 1, vk_ads 2 and one line for its five chunks, direct 1.
    assert len(rows) == 7
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000


def test_the_status_page_in_a_healthy_state_is_green_with_gmail_on_standby_and_the_figures(
    wh: Warehouse,
    redis_url: str,
    manifests: list[SourceManifest],
    runs: Runs,
    live_worker: Callable[[str], Worker],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three days ahead on a virtual clock: the page's "now" and "today" must follow it.
    offset_file = tmp_path / "clock-offset"
    clock.set_offset(offset_file, 3 * 86_400)
    monkeypatch.setenv(clock.CLOCK_FILE_VARIABLE, str(offset_file))
    now = clock.now()
    today = moscow_day(now)
    for source in ("qtickets_sheets", "qtickets_api", "vk_ads", "direct"):
        runs.add(source, "success", finished_ago=120, took=3, rows=50, now=now)
        live_worker(source)
    add_sale(wh, today, "e1", Decimal("12000.00"))
    add_sale(wh, today, "e2", Decimal("3000.00"))
    add_sale(wh, today - timedelta(days=1), "e1", Decimal("4000.00"))
    add_vk_spend(wh, today, "b1", Decimal("6000.00"))
    add_vk_spend(wh, today - timedelta(days=1), "b1", Decimal("5000.00"))
    refresh_marts(wh)
    links = PageSettings(
        grafana_url="https://grafana.example.ru/d/zakaz",
        datalens_url="https://datalens.yandex/abc",
    )

    app = create_app(redis_url=redis_url, warehouse=wh, manifests=manifests, page_settings=links)
    with serving(app) as base_url:
        dom = run_chromium(["--dump-dom", f"{base_url}/"], tmp_path / "profile-dom")
        run_chromium(
            [
                f"--screenshot={ARTIFACTS / 'status-page-healthy.png'}",
                "--window-size=1280,1300",
                f"{base_url}/",
            ],
            tmp_path / "profile-shot",
        )

    for source in ("qtickets_sheets", "qtickets_api", "vk_ads", "direct"):
        assert card(dom, source) == "green", text(card_html(dom, source))
        assert "Fresh" in text(card_html(dom, source))
    gmail = card_html(dom, "gmail")
    assert card(dom, "gmail") == "grey"
    assert "Standby" in text(gmail) and "backup channel" in text(gmail)
    assert "4 fresh" in text(dom) and "1 standby" in text(dom)
    assert "No open alerts." in text(dom)
    figures = dom[dom.index('id="figures"') : dom.index('class="cards"')]
    shown = text(figures)  # thin no-break spaces between thousands read as spaces
    assert f"Revenue today ({today.isoformat()})" in shown
    assert "15 000 ₽" in shown and "yesterday 4 000 ₽" in shown
    assert "6 000 ₽" in shown and "yesterday 5 000 ₽" in shown
    assert "ROMI today 2.50 yesterday 0.80" in shown
    assert "romi-green" in figures and "romi-red" in figures
    assert "1.0 is break-even" in shown
    assert 'href="https://grafana.example.ru/d/zakaz"' in dom
    assert 'href="https://datalens.yandex/abc"' in dom
