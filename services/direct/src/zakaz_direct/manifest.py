"""The `direct` source declared once: Yandex Direct ad statistics per day, campaign, group and ad."""

from __future__ import annotations

from datetime import timedelta

from zakaz_common.manifest import SourceManifest

MANIFEST = SourceManifest(
    name="direct",
    title="Yandex Direct",
    load="zakaz_direct.jobs:load",
    # 00:10 Moscow: yesterday is over; the lookback days pick up Direct's later click filtering.
    schedule="10 0 * * *",
    tables=("fact_direct_daily",),
    # A daily source: one missed run is tolerated, two are stale.
    freshness_budget=timedelta(days=2),
    data_date="stat_date",
    # Offline reports queue behind other advertisers' reports and legitimately take minutes;
    # Direct keeps them 5 hours, but a run stops polling at its deadline and RQ's retry asks
    # again (a report of the same run is found again by its name).
    deadline=timedelta(minutes=30),
    job_timeout=timedelta(minutes=40),
    # One report per month of history: few queue slots, each well within the build time limit.
    backfill_chunk_days=31,
    settings=("zakaz_direct.settings:DirectSettings",),
)
