"""`zakaz demo`: the sandbox upstreams on loopback, every source once, the checks, a summary.

Needs the `zakaz-sandbox` package (part of the workspace). The sources run through `execute`,
exactly as `zakaz run` runs them; their settings point at the sandbox, which issues its own
credentials. Redis is not needed (locks and the VK token cache fall back to files).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zakaz_common.checks import CheckResult, run_checks
from zakaz_common.clickhouse import Warehouse
from zakaz_common.errors import ConfigError
from zakaz_common.localserver import serving
from zakaz_common.manifest import CONTRACT_SOURCES, manifests
from zakaz_common.migrate import migrate
from zakaz_common.runs import RunRequest, RunSummary, execute
from zakaz_common.settings import CoreSettings

_COLOURS = {"green": "green", "yellow": "yellow", "red": "red", "grey": "bright_black"}

#: The ROMI table's caption: what the number means, in the words marketing uses.
ROMI_CAPTION = (
    "ROMI = выручка ÷ расход на рекламу (у маркетологов также ROAS); 1,00 — безубыточность. "
    "Зелёный > 1,5 · жёлтый 1–1,5 · красный < 1 · серый — расхода нет."
)

#: The label of the ROMI table's line for ad spend that names no show.
UNATTRIBUTED_LABEL = "расход, не привязанный к шоу"


@dataclass(frozen=True)
class RomiLine:
    """One show's row of the ROMI table: a `v_romi_kpi` row and the events it stands for."""

    city: str
    event_date: date | None
    shows: tuple[str, ...]
    tickets_sold: int
    revenue: Decimal
    spend_vk: Decimal
    spend_direct: Decimal
    romi: float | None
    romi_color: str


@dataclass
class Unattributed:
    """Ad spend naming no show: its `utm_content` did not parse, or no show is on its city/date."""

    spend_vk: Decimal = Decimal(0)
    spend_direct: Decimal = Decimal(0)
    #: Spend by origin: `utm_content не разобран`, `нет шоу unknown 2026-12-12`, …
    parts: dict[str, Decimal] = field(default_factory=dict)

    def add(self, label: str, vk: Decimal, direct: Decimal) -> None:
        """Count spend of one origin."""
        self.spend_vk += vk
        self.spend_direct += direct
        self.parts[label] = self.parts.get(label, Decimal(0)) + vk + direct

    def by_platform(self, platform: str) -> Decimal:
        """The spend of one platform (`vk` or `direct`)."""
        return self.spend_vk if platform == "vk" else self.spend_direct

    def describe(self) -> str:
        """Its origins with their spend, for the table."""
        return "; ".join(f"{label}: {_money(value)} ₽" for label, value in self.parts.items())


@dataclass
class DemoResult:
    """What a demo run did."""

    runs: list[RunSummary] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every source loaded and no error-severity check failed."""
        return all(r.ok for r in self.runs) and not any(c.fails_command for c in self.checks)


@contextmanager
def sandbox(workdir: Path, *, today: date | None = None) -> Iterator[dict[str, dict[str, str]]]:
    """Serve the sandbox on loopback; yields each source's settings pointing at it."""
    try:
        from zakaz_sandbox.app import create_app
        from zakaz_sandbox.demo_env import source_settings
    except ImportError as exc:
        raise ConfigError("the demo needs the zakaz-sandbox package: run `make demo`") from exc
    with serving(create_app(today=today)) as base_url:
        yield source_settings(base_url, workdir)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_demo(
    wh: Warehouse, core: CoreSettings, console: Console, *, workdir: Path, today: date | None = None
) -> DemoResult:
    """Load every source once from the sandbox into `wh`, check, and print the summary."""
    migrate(wh)
    installed = manifests()
    missing = [s for s in CONTRACT_SOURCES if s not in installed]
    if missing:
        raise ConfigError(f"sources not installed: {', '.join(missing)}; run `make demo`")
    result = DemoResult()
    with sandbox(workdir, today=today) as settings:
        everything = {k: v for values in settings.values() for k, v in values.items()}
        with (
            environment(everything),
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress,
        ):
            task = progress.add_task("loading sources", total=len(CONTRACT_SOURCES))
            for name in CONTRACT_SOURCES:
                progress.update(task, description=f"loading {name}")
                summary = execute(installed[name], RunRequest(), wh=wh, core=core, trigger="demo")
                result.runs.append(summary)
                mark = "[green]✓[/green]" if summary.ok else "[red]✗[/red]"
                progress.console.print(
                    f"{mark} {name}: {summary.status}, {summary.rows_processed} rows, "
                    f"{summary.rows_rejected} rejected, {summary.duration_ms} ms"
                    + (f" — {summary.message}" if not summary.ok else ""),
                    highlight=False,
                )
                progress.advance(task)
    result.checks = run_checks(wh, installed.values())
    print_summary(wh, console, result)
    return result


def print_summary(wh: Warehouse, console: Console, result: DemoResult) -> None:
    """Sales by city and show, spend by platform, the ROMI table, the checks, where data is."""
    sales = Table(title="Продажи по городам и шоу (v_sales_latest)")
    for col in ("город", "шоу", "дата шоу", "билетов", "выручка, ₽", "источник"):
        sales.add_column(col, justify="right" if col in {"билетов", "выручка, ₽"} else "left")
    for row in wh.rows(
        "SELECT city, event_name, event_date, sum(tickets_sold), sum(revenue), "
        "arrayStringConcat(groupUniqArray(source), ', ') FROM v_sales_latest "
        "GROUP BY city, event_name, event_date ORDER BY sum(revenue) DESC"
    ):
        sales.add_row(row[0], row[1], _fmt(row[2]), str(row[3]), _money(row[4]), row[5])
    console.print(sales)

    shows, unattributed = romi_lines(wh)
    spend = Table(title="Реклама по площадкам (v_marketing_daily)")
    for col in ("площадка", "показы", "клики", "расход, ₽", "не привязан к шоу, ₽"):
        spend.add_column(col, justify="left" if col == "площадка" else "right")
    for row in wh.rows(
        "SELECT platform, sum(impressions), sum(clicks), sum(spend) "
        "FROM v_marketing_daily GROUP BY platform ORDER BY platform"
    ):
        spend.add_row(
            row[0],
            f"{row[1]:,}".replace(",", " "),
            f"{row[2]:,}".replace(",", " "),
            _money(row[3]),
            _money(unattributed.by_platform(row[0])),
        )
    console.print(spend)

    romi = Table(title="ROMI по шоу (v_romi_kpi)", caption=ROMI_CAPTION, caption_justify="left")
    for col in ("город", "дата шоу", "шоу", "билетов", "выручка, ₽", "VK, ₽", "Директ, ₽", "ROMI"):
        romi.add_column(col, justify="left" if col in {"город", "дата шоу", "шоу"} else "right")
    for line in shows:
        colour = _COLOURS.get(line.romi_color, "white")
        value = "—" if line.romi is None else f"{line.romi:.2f}".replace(".", ",")
        romi.add_row(
            line.city,
            _fmt(line.event_date),
            "; ".join(line.shows) or "—",
            str(line.tickets_sold),
            _money(line.revenue),
            _money(line.spend_vk),
            _money(line.spend_direct),
            f"[{colour}]{value} ●[/{colour}]",
        )
    if unattributed.spend_vk or unattributed.spend_direct:
        romi.add_section()
        romi.add_row(
            "—",
            "—",
            f"{UNATTRIBUTED_LABEL} ({unattributed.describe()})",
            "",
            "",
            _money(unattributed.spend_vk),
            _money(unattributed.spend_direct),
            "—",
        )
    console.print(romi)

    failed = [c for c in result.checks if not c.ok]
    if failed:
        checks = Table(title="zakaz check")
        for col in ("check", "severity", "detail"):
            checks.add_column(col)
        for c in failed:
            checks.add_row(c.name, c.severity, c.message)
        console.print(checks)
    else:
        console.print("[green]zakaz check: every check passed[/green]")
    console.print(
        f"\nThe data is in {wh.display}.\n"
        "  zakaz status                      # last runs and freshness of every source\n"
        "  zakaz check                       # the quality checks\n"
        '  zakaz sql "SELECT city, event_date, revenue, spend, romi, romi_color FROM v_romi_kpi"\n'
        "  (from a clone: uv run --frozen zakaz …; every command, variable and view: "
        "docs/reference.md)",
        highlight=False,
    )


def romi_lines(wh: Warehouse) -> tuple[list[RomiLine], Unattributed]:
    """The shows of `v_romi_kpi` with their event names, and the spend that names no show.

    A `(city, event_date)` row is a show when it has sales, or when an event (of `dim_events`
    or `v_sales_latest`) is on that city and date. A row with spend only and no such event (an unknown
    city slug with a valid date, a date no show is on) is not a show: its spend joins the
    unparsed spend (`city = ''`, which the view leaves out) on one line of its own.
    """
    names: dict[tuple[str, date | None], set[str]] = {}
    for city, event_date, name in wh.rows(
        "SELECT city, event_date, event_name FROM dim_events WHERE event_name != '' "
        "UNION DISTINCT SELECT city, event_date, event_name FROM v_sales_latest "
        "WHERE event_name != ''"
    ):
        names.setdefault((city, event_date), set()).add(name)
    shows: list[RomiLine] = []
    unattributed = Unattributed()
    for platform, spend in wh.rows(
        "SELECT platform, sum(spend) FROM v_marketing_daily WHERE city = '' OR event_date IS NULL "
        "GROUP BY platform ORDER BY platform"
    ):
        zero = Decimal(0)
        vk, direct = (spend, zero) if platform == "vk" else (zero, spend)
        unattributed.add("utm_content не разобран", vk, direct)
    for row in wh.rows(
        "SELECT city, event_date, tickets_sold, revenue, spend_vk, spend_direct, romi, romi_color "
        "FROM v_romi_kpi ORDER BY event_date, city"
    ):
        city, event_date, sold, revenue, vk, direct, romi, colour = row
        found = names.get((city, event_date), set())
        if not found and not sold and not revenue:
            unattributed.add(f"нет шоу {city} {_fmt(event_date)}", vk, direct)
            continue
        shows.append(
            RomiLine(
                city, event_date, tuple(sorted(found)), sold, revenue, vk, direct, romi, colour
            )
        )
    return shows, unattributed


def _money(value: Any) -> str:
    return f"{value:,.2f}".replace(",", " ").replace(".", ",")


def _fmt(value: Any) -> str:
    return "—" if value is None else str(value)
