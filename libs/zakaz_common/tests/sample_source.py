"""A minimal source used by the runtime tests: it loads sales given in an env variable.

It plugs into the platform exactly as a real source does (manifest + load function), so the
tests drive `execute`, `zakaz run` and `zakaz backfill` through their real code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from zakaz_common.errors import AuthError, BadValue, PermanentError, TransientError
from zakaz_common.facts import SALES
from zakaz_common.load import Reject, Scope
from zakaz_common.manifest import SourceManifest
from zakaz_common.normalize import parse_decimal
from zakaz_common.runs import LoadOutcome, RunContext

log = logging.getLogger(__name__)

MANIFEST = SourceManifest(
    name="sample",
    title="Sample source for tests",
    load="sample_source:load",
    schedule="*/15 * * * *",
    tables=("fact_qtickets_sales_daily",),
    freshness_budget=timedelta(minutes=30),
    backfill_chunk_days=2,
)


def load(ctx: RunContext) -> LoadOutcome:
    """Load `SAMPLE_ROWS` (JSON [date, event_id, tickets, revenue] lists) as gmail sales.

    `SAMPLE_FAIL=auth`, `transient` or `after_publish` makes it fail that way; `SAMPLE_SLEEP=N` makes it take
    N seconds first (in short sleeps, so a stop request raised inside it lands promptly);
    `SAMPLE_STARTED=path` makes it create that file as it starts (a test knows it is loading).
    """
    if os.environ.get("SAMPLE_STARTED"):
        Path(os.environ["SAMPLE_STARTED"]).touch()
    deadline = time.monotonic() + float(os.environ.get("SAMPLE_SLEEP", "0"))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    if os.environ.get("SAMPLE_FAIL") == "auth":
        raise AuthError("sample upstream answered 401: set SAMPLE_TOKEN (token=abc123secret)")
    if os.environ.get("SAMPLE_FAIL") == "transient":
        raise TransientError("sample upstream answered 503: try again later")
    raw = json.loads(os.environ.get("SAMPLE_ROWS", "[]"))
    log.info("sample upstream gave %d rows", len(raw))
    window = ctx.request.window(ctx.today, None)
    rows, rejects = [], []
    for item in raw:
        try:
            day = date.fromisoformat(item[0])
            rows.append(
                {
                    "source": "gmail",
                    "sale_date": day,
                    "event_id": str(item[1]),
                    "tickets_sold": int(item[2]),
                    "revenue": parse_decimal(item[3]),
                    "event_name": "",
                    "city": "москва",
                }
            )
        except (BadValue, ValueError) as exc:
            rejects.append(Reject("sales", {"row": item}, str(exc), _key(item), (SALES.fact,)))
    if window:
        rows = [r for r in rows if window[0] <= r["sale_date"] <= window[1]]
    if ctx.request.dry_run:
        return LoadOutcome(rows_processed=len(rows), rows_rejected=len(rejects))
    ctx.stage(SALES, rows)
    ctx.reject(rejects)
    since, to = window if window else (None, None)
    result = ctx.publish(SALES, Scope(equals={"source": ["gmail"]}, since=since, to=to))
    if os.environ.get("SAMPLE_FAIL") == "after_publish":
        raise PermanentError("sample upstream broke after the sales were published")
    revenue = sum((r["revenue"] for r in rows), Decimal(0))
    return LoadOutcome(
        rows_processed=len(rows),
        rows_rejected=len(rejects),
        counts={
            "upserted": result.upserted,
            "retracted": result.retracted,
            "revenue": str(revenue),
        },
    )


def _key(item: list[object]) -> dict[str, object]:
    """The key columns still readable from a bad row: the event, and the date if it parses."""
    key: dict[str, object] = {"source": "gmail", "event_id": str(item[1])}
    with contextlib.suppress(ValueError):
        key["sale_date"] = date.fromisoformat(str(item[0]))
    return key
