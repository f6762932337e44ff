"""The source's own tables (migration 0007): messages already loaded, and their staged sales rows.

`stg_gmail_sales` keeps every loaded message's rows by `src_msg_id`, so the winner of a
(sale_date, event_id) is decided over all messages, not only the run's. Rows are keyed by
(src_msg_id, row_no): a message staged twice (a run retried after a crash) is one message.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any, Final

from zakaz_common.clickhouse import Warehouse

from zakaz_gmail.transform import SALES_FIELDS, MessageSales

STAGED: Final = "stg_gmail_sales"
"""Sales rows of every loaded message, by message id."""

LOADED: Final = "gmail_loaded_messages"
"""One row per message read, with its outcome: a listed message found here is skipped."""

_STAGED_COLUMNS: Final = (
    "src_msg_id",
    "row_no",
    "internal_date_ms",
    "msg_at",
    *SALES_FIELDS,
    "run_id",
    "loaded_at",
    "_ver",
)
_LOADED_COLUMNS: Final = (
    "msg_id",
    "internal_date_ms",
    "msg_at",
    "outcome",
    "sales_rows",
    "rejected",
    "run_id",
    "loaded_at",
    "_ver",
)


def loaded_ids(wh: Warehouse, ids: Collection[str]) -> set[str]:
    """Which of these message ids were loaded by an earlier run."""
    if not ids:
        return set()
    found = wh.rows(
        f"SELECT msg_id FROM {LOADED} FINAL WHERE msg_id IN {{ids:Array(String)}}",
        {"ids": list(ids)},
    )
    return {str(r[0]) for r in found}


def stage_messages(
    wh: Warehouse, run_id: str, loaded_at: int, messages: Sequence[MessageSales]
) -> int:
    """Keep the sales rows of these messages; returns how many rows."""
    ver = time.time_ns()
    rows = [
        (
            m.msg_id,
            row["row_no"],
            m.internal_date_ms,
            m.internal_date_ms // 1000,
            *(row[name] for name in SALES_FIELDS),
            run_id,
            loaded_at,
            ver,
        )
        for m in messages
        for row in m.rows
    ]
    if not rows:
        return 0
    return wh.insert(STAGED, rows, _STAGED_COLUMNS)


def candidates(wh: Warehouse, keys: Collection[tuple[date, str]]) -> list[dict[str, Any]]:
    """Every staged row, of any loaded message, for these (sale_date, event_id) keys."""
    if not keys:
        return []
    fields = ", ".join(SALES_FIELDS)
    return wh.dicts(
        f"SELECT src_msg_id, row_no, internal_date_ms, {fields} FROM {STAGED} FINAL "
        "WHERE (sale_date, event_id) IN {keys:Array(Tuple(Date, String))} "
        "ORDER BY src_msg_id, row_no",
        {"keys": sorted(keys)},
    )


def record_loaded(
    wh: Warehouse, run_id: str, loaded_at: int, messages: Sequence[MessageSales]
) -> int:
    """Mark these messages loaded, with what came of each."""
    ver = time.time_ns()
    rows = [
        (
            m.msg_id,
            m.internal_date_ms,
            m.internal_date_ms // 1000,
            m.outcome,
            len(m.rows),
            len(m.rejects),
            run_id,
            loaded_at,
            ver,
        )
        for m in messages
    ]
    if not rows:
        return 0
    return wh.insert(LOADED, rows, _LOADED_COLUMNS)
