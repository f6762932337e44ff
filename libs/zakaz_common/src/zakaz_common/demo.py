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

    spend = Table(title="Реклама по площадкам (v_marketing_daily)")
    for col in ("площадка", "показы", "клики", "расход, ₽", "без шоу (utm), ₽"):
        spend.add_column(col, justify="left" if col == "площадка" else "right")
    for row in wh.rows(
        "SELECT platform, sum(impressions), sum(clicks), sum(spend), sumIf(spend, city = '') "
        "FROM v_marketing_daily GROUP BY platform ORDER BY platform"
    ):
        spend.add_row(
            row[0],
            f"{row[1]:,}".replace(",", " "),
            f"{row[2]:,}".replace(",", " "),
            _money(row[3]),
            _money(row[4]),
        )
    console.print(spend)

    romi = Table(title="ROMI по шоу (v_romi_kpi)")
    for col in ("город", "дата шоу", "билетов", "выручка, ₽", "VK, ₽", "Директ, ₽", "ROMI"):
        romi.add_column(col, justify="left" if col in {"город", "дата шоу"} else "right")
    for row in wh.rows(
        "SELECT city, event_date, tickets_sold, revenue, spend_vk, spend_direct, romi, romi_color "
        "FROM v_romi_kpi ORDER BY event_date, city"
    ):
        colour = _COLOURS.get(row[7], "white")
        value = "—" if row[6] is None else f"{row[6]:.2f}"
        romi.add_row(
            row[0],
            _fmt(row[1]),
            str(row[2]),
            _money(row[3]),
            _money(row[4]),
            _money(row[5]),
            f"[{colour}]{value} ●[/{colour}]",
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
        '  uv run python -c "from zakaz_common.clickhouse import open_warehouse; '
        "print(open_warehouse().rows('SELECT city, event_date, romi, romi_color FROM v_romi_kpi'))\"",
        highlight=False,
    )


def _money(value: Any) -> str:
    return f"{value:,.2f}".replace(",", " ").replace(".", ",")


def _fmt(value: Any) -> str:
    return "—" if value is None else str(value)
