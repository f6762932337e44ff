"""Data-quality checks run by `zakaz check`; a failed check of severity `error` fails the command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from zakaz_common import clock
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import SourceManifest

Severity = Literal["error", "warning", "info"]

#: Each BI view with the columns that must identify a row (CONTRACT §4).
VIEW_KEYS: dict[str, tuple[str, ...]] = {
    "v_sales_latest": ("sale_date", "event_id"),
    "v_sales_14d": ("sale_date", "event_id"),
    "v_marketing_daily": ("stat_date", "platform", "city", "event_date"),
    "v_campaign_performance": ("stat_date", "platform", "campaign_id"),
    "v_romi_kpi": ("city", "event_date"),
    "v_inventory": ("event_id",),
    "v_data_freshness": ("source",),
    "dim_events": ("event_id",),
}

#: How far back the unparsed-spend check looks.
UNPARSED_SPEND_DAYS = 30


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    severity: Severity
    ok: bool
    message: str

    @property
    def fails_command(self) -> bool:
        """Whether this result makes `zakaz check` exit 1."""
        return not self.ok and self.severity == "error"


def check_view_duplicates(wh: Warehouse) -> list[CheckResult]:
    """Every BI view returns each key once."""
    results = []
    for view, key in VIEW_KEYS.items():
        cols = ", ".join(key)
        total, distinct = wh.rows(f"SELECT count(), uniqExact(tuple({cols})) FROM {view}")[0]
        dupes = int(total) - int(distinct)
        results.append(
            CheckResult(
                f"duplicates:{view}",
                "error",
                dupes == 0,
                f"{dupes} duplicate keys ({cols})" if dupes else f"{total} rows, keys unique",
            )
        )
    return results


def check_negative_money(wh: Warehouse) -> list[CheckResult]:
    """No negative revenue in sales, no negative spend in ads."""
    sales = int(
        wh.scalar("SELECT count() FROM v_sales_latest WHERE revenue < 0 OR tickets_sold < 0")
    )
    spend = int(wh.scalar("SELECT count() FROM v_marketing_daily WHERE spend < 0"))
    return [
        CheckResult(
            "negative_money:sales",
            "error",
            sales == 0,
            f"{sales} sales rows with negative revenue or tickets" if sales else "none",
        ),
        CheckResult(
            "negative_money:spend",
            "error",
            spend == 0,
            f"{spend} ad rows with negative spend" if spend else "none",
        ),
    ]


def check_unknown_cities(wh: Warehouse) -> list[CheckResult]:
    """Every city in events, sales and parsed ads is a canonical city of `dim_city`."""
    rows = wh.rows(
        """
        SELECT city, groupUniqArray(origin) FROM
        (
            SELECT city, 'events' AS origin FROM dim_events
            UNION ALL SELECT city, 'sales' FROM v_sales_latest
            UNION ALL SELECT city, 'ads' FROM v_marketing_daily
        )
        WHERE city != '' AND city NOT IN (SELECT city FROM dim_city FINAL)
        GROUP BY city ORDER BY city LIMIT 50
        """
    )
    if not rows:
        return [CheckResult("unknown_cities", "warning", True, "every city is known")]
    listed = ", ".join(f"{c!r} ({'/'.join(sorted(o))})" for c, o in rows)
    return [
        CheckResult(
            "unknown_cities",
            "warning",
            False,
            f"{len(rows)} cities not in dim_city: {listed}; add them to cities.csv",
        )
    ]


def check_unparsed_spend(wh: Warehouse) -> list[CheckResult]:
    """Ad spend whose utm_content did not name a show (city = '') in recent days."""
    rows = wh.rows(
        "SELECT platform, sum(spend), count() FROM v_marketing_daily "
        "WHERE city = '' AND stat_date >= toDate(now(), 'Europe/Moscow') - {days:UInt32} "
        "GROUP BY platform ORDER BY platform",
        {"days": UNPARSED_SPEND_DAYS},
    )
    rows = [r for r in rows if r[1] != 0]
    if not rows:
        return [
            CheckResult("unparsed_utm_spend", "warning", True, "all recent spend is attributed")
        ]
    listed = ", ".join(f"{p}: {s} ₽ in {n} rows" for p, s, n in rows)
    return [
        CheckResult(
            "unparsed_utm_spend",
            "warning",
            False,
            f"spend without a parsable utm_content in the last {UNPARSED_SPEND_DAYS} "
            f"days: {listed}",
        )
    ]


def check_freshness(
    wh: Warehouse, manifests: Iterable[SourceManifest], now: float | None = None
) -> list[CheckResult]:
    """Each enabled source succeeded within its freshness budget."""
    now = now if now is not None else clock.now()
    last = dict(
        wh.rows(
            "SELECT job, toUnixTimestamp(max(finished_at)) FROM meta_job_runs "
            "WHERE status = 'success' GROUP BY job"
        )
    )
    results = []
    for m in manifests:
        if not m.enabled_by_default:
            continue
        if m.name not in last:
            results.append(CheckResult(f"freshness:{m.name}", "info", True, "never ran yet"))
            continue
        age = now - float(last[m.name])
        budget = m.freshness_budget.total_seconds()
        ok = age <= budget
        results.append(
            CheckResult(
                f"freshness:{m.name}",
                "warning",
                ok,
                f"last success {age / 3600:.1f} h ago (budget {budget / 3600:.1f} h)",
            )
        )
    return results


def check_recent_rejects(wh: Warehouse) -> list[CheckResult]:
    """Rows rejected in the last day, per source (information for the operator)."""
    rows = wh.rows(
        "SELECT source, count() FROM rejects WHERE loaded_at >= now() - INTERVAL 1 DAY "
        "GROUP BY source ORDER BY source"
    )
    if not rows:
        return [CheckResult("rejects:24h", "info", True, "no rejected rows")]
    listed = ", ".join(f"{s}: {n}" for s, n in rows)
    return [CheckResult("rejects:24h", "info", False, f"rejected rows in 24 h: {listed}")]


def check_held_back(wh: Warehouse) -> list[CheckResult]:
    """Keys that the latest successful run of a source held back because their rows were rejected.

    Such a key shows its last good value, not what the upstream says now, until the rows are
    fixed upstream and a run reads them.
    """
    rows = wh.rows(
        "SELECT job, argMax(metrics, _ver) FROM meta_job_runs "
        "WHERE status = 'success' GROUP BY job ORDER BY job"
    )
    held = []
    for job, metrics in rows:
        try:
            counts = json.loads(metrics or "{}")
        except ValueError:
            continue
        if counts.get("held_back") or counts.get("withheld_facts"):
            dates = ", ".join(counts.get("held_back_dates") or []) or "dates unknown"
            held.append(f"{job}: {counts.get('held_back', 0)} keys ({dates})")
    if not held:
        return [CheckResult("held_back", "warning", True, "no key held back by rejected rows")]
    return [
        CheckResult(
            "held_back",
            "warning",
            False,
            "keys kept at their last good value because rows of them were rejected: "
            + "; ".join(held)
            + " (fix the rows upstream; see rejects)",
        )
    ]


def run_checks(wh: Warehouse, manifests: Iterable[SourceManifest]) -> list[CheckResult]:
    """Every check, in a stable order."""
    checks: list[Callable[[], list[CheckResult]]] = [
        lambda: check_view_duplicates(wh),
        lambda: check_negative_money(wh),
        lambda: check_unknown_cities(wh),
        lambda: check_unparsed_spend(wh),
        lambda: check_freshness(wh, manifests),
        lambda: check_recent_rejects(wh),
        lambda: check_held_back(wh),
    ]
    results: list[CheckResult] = []
    for check in checks:
        results.extend(check())
    return results
