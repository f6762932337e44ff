"""The `gmail` source declared once: the backup sales channel, off until the primaries go stale."""

from __future__ import annotations

from datetime import timedelta

from zakaz_common.manifest import SourceManifest

MANIFEST = SourceManifest(
    name="gmail",
    title="QTickets sales reports from Gmail (backup channel)",
    load="zakaz_gmail.jobs:load",
    # Every 4 hours: reports arrive a few times a day, and each run reads only new messages.
    schedule="0 */4 * * *",
    tables=("fact_qtickets_sales_daily", "stg_gmail_sales", "gmail_loaded_messages"),
    # Two schedule intervals.
    freshness_budget=timedelta(hours=8),
    data_date="sale_date",
    # Off by default: the health service's failover enables it when both primaries are stale.
    enabled_by_default=False,
    # A run reads a few dozen messages; a quarter of an hour is ample and far inside 4 hours.
    deadline=timedelta(minutes=15),
    job_timeout=timedelta(minutes=20),
    # A backfill chunk is one search (`after:`/`before:`) plus the new messages in it.
    backfill_chunk_days=31,
    settings=("zakaz_gmail.settings:GmailSettings",),
)
