"""The `vk_ads` source declared once: daily VK Ads statistics, with a lookback for revisions."""

from __future__ import annotations

from datetime import timedelta

from zakaz_common.manifest import SourceManifest

MANIFEST = SourceManifest(
    name="vk_ads",
    title="VK Ads (ads.vk.com): spend, impressions and clicks per banner and day",
    load="zakaz_vk_ads.jobs:load",
    # Daily at midnight Moscow time: yesterday is complete, and the lookback re-pulls the days
    # VK may still revise.
    schedule="0 0 * * *",
    tables=("fact_vk_ads_daily",),
    # One daily run plus two hours for RQ's retries before the source counts as stale.
    freshness_budget=timedelta(hours=26),
    data_date="stat_date",
    # A daily run is a few dozen requests; rate-limit pauses and retries fit well inside this.
    deadline=timedelta(minutes=20),
    job_timeout=timedelta(minutes=30),
    # VK statistics are safe in windows of up to 92 days.
    backfill_chunk_days=92,
    settings=("zakaz_vk_ads.settings:VkAdsSettings",),
)
