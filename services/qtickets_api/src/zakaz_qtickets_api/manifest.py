"""The `qtickets_api` source, declared once for the CLI, the service runtime and health."""

from __future__ import annotations

from datetime import timedelta

from zakaz_common.manifest import SourceManifest

MANIFEST = SourceManifest(
    name="qtickets_api",
    title="QTickets API",
    load="zakaz_qtickets_api.jobs:load",
    # Every 15 minutes: the live feed behind the Sheets one.
    schedule="*/15 * * * *",
    tables=(
        "fact_qtickets_sales_daily",
        "fact_qtickets_sales_utm_daily",
        "fact_qtickets_inventory_latest",
        "dim_events_src",
    ),
    # Two schedule intervals.
    freshness_budget=timedelta(minutes=30),
    data_date="sale_date",
    # Well inside the 15-minute interval, so a silent QTickets never overlaps the next run.
    deadline=timedelta(minutes=10),
    job_timeout=timedelta(minutes=13),
    # A week of orders per chunk keeps each run's paging short.
    backfill_chunk_days=7,
    settings=("zakaz_qtickets_api.settings:QticketsSettings",),
)
