"""The fault suite's stand: drive the sandbox over HTTP, run `zakaz run` in process, read what a
run left behind (its recorded row, the alerts it opened, its rejects) and the BI views.

Reading runs goes through `zakaz_common.runs` and alerts through `zakaz_common.alerts`, so a
change in how those tables are read touches one place.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from typer.testing import CliRunner
from zakaz_common.alerts import Alert, open_alerts
from zakaz_common.cli import app
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import get_run

#: The BI views the issue names: what dashboards read, so what a fault must not disturb.
VIEWS: Final = (
    "v_sales_latest",
    "v_marketing_daily",
    "v_campaign_performance",
    "v_romi_kpi",
    "v_inventory",
)

#: The facts each source writes (rows of other sources are filtered out by `source`).
FACTS: Final = {
    "qtickets_sheets": (
        "fact_qtickets_sales_daily",
        "dim_events_src",
        "fact_qtickets_inventory_latest",
    ),
    "qtickets_api": (
        "fact_qtickets_sales_daily",
        "fact_qtickets_sales_utm_daily",
        "dim_events_src",
        "fact_qtickets_inventory_latest",
    ),
    "vk_ads": ("fact_vk_ads_daily",),
    "direct": ("fact_direct_daily",),
    "gmail": ("fact_qtickets_sales_daily", "dim_events_src"),
}

#: Columns that change on every load whatever the data (bookkeeping, observation time).
VOLATILE: Final = frozenset({"updated_at", "row_hash", "run_id", "loaded_at", "_ver", "_deleted"})

#: Retry waits cut to almost nothing; the policies (attempts, doubling, Retry-After) stay real.
FAST_RETRIES: Final = {
    "SHEETS_BACKOFF_SECONDS": "0.01",
    "GMAIL_BACKOFF_SECONDS": "0.01",
    "VK_RETRY_WAIT_SECONDS": "0.01",
    "DIRECT_MAX_WAIT_SECONDS": "0",
}

Snapshot = dict[str, list[tuple[Any, ...]]]


@dataclass
class Run:
    """One `zakaz run <source>` and what it left: exit code, recorded row, alerts, rejects."""

    source: str
    exit_code: int
    output: str
    summary: dict[str, Any]
    row: dict[str, Any] | None
    opened: list[Alert]
    rejects: list[dict[str, Any]]
    #: Kinds of the source's alerts open right after the run (opened by it or kept open).
    open_after: list[str]

    @property
    def status(self) -> str:
        """The status recorded in meta_job_runs ('' when nothing was recorded)."""
        return str(self.row["status"]) if self.row else ""

    def why(self) -> str:
        """The run's recorded message (or the CLI's last words): an assertion's explanation."""
        return str(self.summary.get("message") or self.output[-600:])

    def opened_kinds(self) -> list[str]:
        """Kinds of the alerts this run opened, sorted."""
        return sorted(a.kind for a in self.opened)


@dataclass
class Stand:
    """The sandbox at `url`, the sources' settings for it, and the warehouse the CLI writes."""

    url: str
    wh: Warehouse
    settings: dict[str, dict[str, str]]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30), repr=False)

    def control(self, path: str, body: Any = None, *, method: str = "POST") -> Any:
        """Call a control endpoint under /_sandbox (e.g. `qtickets/faults`)."""
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        """GET a control endpoint under /_sandbox."""
        response = self.http.get(f"{self.url}/_sandbox/{path}", params=params)
        response.raise_for_status()
        return response.json()

    def run(self, source: str) -> Run:
        """`zakaz run <source>` through the real CLI, in process, on this stand's warehouse."""
        before = {a.alert_id for a in open_alerts(self.wh, source)}
        result = CliRunner().invoke(app, ["run", source])
        text = result.stdout.strip()
        summary: dict[str, Any] = json.loads(text) if text.startswith("{") else {}
        # No summary (the command failed before running): nothing of this run is recorded.
        run_id = summary.get("run_id")
        row = get_run(self.wh, str(run_id)) if run_id else None
        now_open = open_alerts(self.wh, source)
        opened = [a for a in now_open if a.alert_id not in before]
        rejects = (
            self.wh.dicts(
                "SELECT entity, raw, reason FROM rejects WHERE run_id = {run_id:String}",
                {"run_id": str(row["run_id"])},
            )
            if row
            else []
        )
        kinds = sorted(a.kind for a in now_open)
        return Run(source, result.exit_code, result.output, summary, row, opened, rejects, kinds)

    def open_kinds(self, source: str) -> list[str]:
        """Kinds of the source's open alerts, sorted."""
        return sorted(a.kind for a in open_alerts(self.wh, source))


def snapshot(wh: Warehouse, source: str) -> Snapshot:
    """The BI views and the source's facts as sorted rows, bookkeeping columns left out."""
    found: Snapshot = {}
    for table in (*VIEWS, *FACTS[source]):
        columns = [
            name
            for (name,) in wh.rows(
                "SELECT name FROM system.columns WHERE database = {db:String} "
                "AND table = {t:String} ORDER BY position",
                {"db": wh.database, "t": table},
            )
            if name not in VOLATILE
        ]
        query = f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{table}`"
        if table.startswith(("fact_", "dim_")):
            query += " FINAL WHERE _deleted = 0"
            if "source" in columns:
                query += f" AND source = '{source}'"
        found[table] = sorted((tuple(r) for r in wh.rows(query)), key=repr)
    return found


def differences(before: Snapshot, after: Snapshot, limit: int = 6) -> dict[str, Any]:
    """Per table, the rows only before and only after (a few): an assertion's explanation."""
    out: dict[str, Any] = {}
    for table in before.keys() | after.keys():
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            out[table] = {
                "only_before": sorted(old - new, key=repr)[:limit],
                "only_after": sorted(new - old, key=repr)[:limit],
            }
    return out


def names_field(reason: str, names: Iterable[str]) -> bool:
    """Whether a reject's reason names the field (any of its spellings), case-insensitively."""
    text = reason.lower()
    return any(n.lower() in text for n in names)


def new_rejects(run: Run, baseline: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """This run's rejects that the baseline run did not have (same entity and reason)."""
    seen = {(r["entity"], r["reason"]) for r in baseline}
    return [r for r in run.rejects if (r["entity"], r["reason"]) not in seen]


@dataclass(frozen=True)
class Outcome:
    """One line of the fault matrix."""

    source: str
    fault: str
    exit_code: int
    status: str
    alerts: str
    views: str
    rejects: str


@dataclass
class Matrix:
    """The outcomes of the session's fault cases, written out as a Markdown table."""

    outcomes: list[Outcome] = field(default_factory=list)

    def add(
        self, run: Run, fault: str, views: str, rejects: list[dict[str, Any]] | None = None
    ) -> None:
        """Note what a faulted run did (before the case asserts, so failures are listed too)."""
        self.outcomes.append(
            Outcome(
                run.source,
                fault,
                run.exit_code,
                run.status or "(not recorded)",
                ", ".join(f"{a.kind} ({a.severity})" for a in run.opened) or "—",
                views,
                _reasons(rejects or []),
            )
        )

    def write(self, path: Path, not_produced: Mapping[tuple[str, str], str]) -> None:
        """The table as Markdown, grouped by fault, and the faults not produced, with why."""
        lines = [
            "# Fault matrix",
            "",
            "Written by `tests/faults` when `ZAKAZ_FAULT_MATRIX` is set. *views* compares the BI",
            "views and the source's facts after the faulted run with the state before it",
            "(`unchanged`), or, for bad rows, with a clean run once upstream fixed the row",
            "(`as upstream, bad key kept`: every other key as upstream says, the bad row's key",
            "at its last good value).",
            "",
            "| fault | source | exit code | recorded status | alert opened | views | new rejects |",
            "|---|---|---|---|---|---|---|",
        ]
        for o in sorted(self.outcomes, key=lambda o: (o.fault, o.source)):
            lines.append(
                f"| {o.fault} | {o.source} | {o.exit_code} | {o.status} | {o.alerts} | "
                f"{o.views} | {o.rejects} |"
            )
        lines += ["", "Not run:", ""]
        lines += [f"- {source}, {fault}: {why}" for (source, fault), why in not_produced.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _reasons(rejects: list[dict[str, Any]]) -> str:
    """The rejects' reasons, each once with how many times it came (`… (×4)`)."""
    counted = Counter(_short(r["reason"]) for r in rejects)
    return "; ".join(f"{r} (×{n})" if n > 1 else r for r, n in counted.items()) or "—"


def _short(reason: str, limit: int = 90) -> str:
    printable = "".join(c if c.isprintable() else "?" for c in reason)
    flat = " ".join(printable.split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
