"""`python -m soak --hours 24`: run a simulated day, print the checks as a table, exit 1 on a failure."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from soak import checks
from soak.day import walk
from soak.plan import plan_for
from soak.stack import Stack


def machine() -> str:
    """Cores and RAM of this machine."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        ram = f"{pages / 2**30:.1f} GiB RAM"
    except (ValueError, OSError):
        ram = "RAM unknown"
    return f"{os.cpu_count()} cores, {ram}, {platform.system()} {platform.machine()}"


def markdown(results: list[checks.Check]) -> str:
    """The checks as a markdown table (what docs/operations.md shows)."""
    lines = ["| check | result | detail |", "| --- | --- | --- |"]
    for check in results:
        detail = check.detail.replace("|", "\\|")
        lines.append(f"| {check.name} | {'ok' if check.ok else 'FAILED'} | {detail} |")
    return "\n".join(lines)


def run(hours: int, root: Path, out: Console) -> bool:
    """The day, its checks and the table; whether every check passed."""
    started = time.monotonic()
    plan = plan_for(hours)
    stack = Stack(root)
    results: list[checks.Check] = []
    try:
        stack.start_redis()
        stack.start_sandbox()
        day = walk(stack, plan)
        results.append(
            checks.Check(
                "every slot awaited",
                not day.timeouts,
                "; ".join(day.timeouts)
                or f"{len(day.slots)} slots, {len(day.faults)} faults, {len(day.kills)} SIGKILLs",
            )
        )
        results.append(checks.slots_ran_once(stack, day, plan))
        results.append(checks.system_slots(stack, day))
        results.append(checks.nothing_running(stack))
        results.append(checks.alerts_once(stack, day, plan))
        results.append(checks.status_green(stack))
        stack.stop_up()
        results.append(checks.no_locks(stack))
        clean, failures = checks.clean_load(stack)
        results.append(
            checks.Check(
                "clean load of the final upstream state",
                not failures,
                "; ".join(failures) or "5 sources loaded",
            )
        )
        results.extend(checks.views_equal(stack, clean))
    finally:
        stack.close()
    wall = time.monotonic() - started
    table = Table(title=f"Simulated day: {hours} h, {machine()}, {wall:.0f} s wall")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in results:
        table.add_row(
            check.name, "[green]ok[/green]" if check.ok else "[red]FAILED[/red]", check.detail
        )
    out.print(table)
    out.print(f"machine: {machine()}; wall time {wall:.0f} s; logs in {root}", highlight=False)
    (root / "checks.md").write_text(
        f"{markdown(results)}\n\n{machine()}; {hours} h simulated in {wall:.0f} s wall\n"
    )
    return all(c.ok for c in results) and bool(results)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--hours", type=int, default=24, help="length of the day (24, or 2)")
    parser.add_argument("--dir", type=Path, default=None, help="where to keep the day's files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per poll says nothing
    root = args.dir or Path(tempfile.mkdtemp(prefix="zakaz-soak-"))
    if root.exists() and any(root.iterdir()):
        shutil.rmtree(root)
    ok = run(args.hours, root, Console(width=160))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
