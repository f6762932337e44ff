"""The `qtickets_sheets` source, declared once for the CLI, the service runtime and health."""

from __future__ import annotations

from datetime import timedelta

from zakaz_common.manifest import SourceManifest

MANIFEST = SourceManifest(
    name="qtickets_sheets",
    title="QTickets Google Sheets",
    load="zakaz_qtickets_sheets.jobs:load",
    # Every 15 minutes: the marketing team's main feed, and each run costs two or three reads.
    schedule="*/15 * * * *",
    tables=("dim_events_src", "fact_qtickets_sales_daily", "fact_qtickets_inventory_latest"),
    # Two schedule intervals.
    freshness_budget=timedelta(minutes=30),
    data_date="sale_date",
    # Well inside the 15-minute interval, so a silent Google never overlaps the next run.
    deadline=timedelta(minutes=10),
    job_timeout=timedelta(minutes=13),
    # Every chunk reads the whole sheet (two reads) and narrows the sales it replaces; a month
    # per chunk keeps a long backfill to a few dozen reads.
    backfill_chunk_days=31,
    settings=("zakaz_qtickets_sheets.settings:SheetsSettings",),
)
