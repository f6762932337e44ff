-- Read path for dashboards at scale (bench: 10 M sales rows). Whole-table aggregates move to
-- small marts rebuilt after every run (zakaz_common.marts.refresh_marts), each rebuild stamped
-- with a generation; views read the newest generation. Views over the partitioned facts merge
-- FINAL partition by partition: every fact is partitioned by a function of a key column, so
-- all versions of a key share a partition and the result is the same, in parallel.

-- Sales against parsed spend per show, as of the last refresh.
CREATE TABLE IF NOT EXISTS mart_romi_by_show
(
    generation   UInt64,
    city         String,
    event_date   Nullable(Date),
    tickets_sold Int64,
    revenue      Decimal(18, 2),
    spend_vk     Decimal(18, 2),
    spend_direct Decimal(18, 2)
)
ENGINE = MergeTree
ORDER BY (generation, city);

-- The latest business date each source has loaded, as of the last refresh.
CREATE TABLE IF NOT EXISTS mart_source_dates
(
    generation     UInt64,
    source         LowCardinality(String),
    last_data_date Nullable(Date)
)
ENGINE = MergeTree
ORDER BY (generation, source);

CREATE OR REPLACE VIEW v_sales_latest AS
SELECT
    s.sale_date AS sale_date,
    s.event_id AS event_id,
    if(e.event_name != '', e.event_name, s.event_name) AS event_name,
    e.event_date AS event_date,
    if(e.city != '', e.city, s.city) AS city,
    s.tickets_sold AS tickets_sold,
    s.revenue AS revenue,
    s.source AS source
FROM
(
    SELECT
        sale_date,
        event_id,
        toString(best.1) AS source,
        best.2 AS event_name,
        best.3 AS city,
        best.4 AS tickets_sold,
        best.5 AS revenue
    FROM
    (
        SELECT
            sale_date,
            event_id,
            argMin(tuple(source, event_name, city, tickets_sold, revenue), prio) AS best
        FROM
        (
            SELECT
                sale_date, event_id, source, event_name, city, tickets_sold, revenue,
                multiIf(source = 'qtickets_sheets', 1, source = 'qtickets_api', 2,
                        source = 'gmail', 3, 9) AS prio
            FROM fact_qtickets_sales_daily FINAL
        )
        GROUP BY sale_date, event_id
    )
) AS s
LEFT JOIN dim_events AS e ON e.event_id = s.event_id
SETTINGS join_use_nulls = 0, do_not_merge_across_partitions_select_final = 1;

CREATE OR REPLACE VIEW v_marketing_daily AS
SELECT
    stat_date,
    platform,
    city,
    event_date,
    sum(impressions) AS impressions,
    sum(clicks) AS clicks,
    CAST(sum(spend) AS Decimal(18, 2)) AS spend
FROM
(
    SELECT stat_date, 'vk' AS platform, city, event_date, impressions, clicks, spend
    FROM fact_vk_ads_daily FINAL
    UNION ALL
    SELECT stat_date, 'direct' AS platform, city, event_date, impressions, clicks, spend
    FROM fact_direct_daily FINAL
)
GROUP BY stat_date, platform, city, event_date
HAVING impressions != 0 OR clicks != 0 OR spend != 0
SETTINGS do_not_merge_across_partitions_select_final = 1;

CREATE OR REPLACE VIEW v_campaign_performance AS
SELECT
    stat_date,
    platform,
    campaign_id,
    campaign_name,
    impressions,
    clicks,
    spend,
    if(impressions = 0, NULL, clicks / impressions) AS ctr,
    if(clicks = 0, NULL, toFloat64(spend) / clicks) AS cpc
FROM
(
    SELECT
        stat_date,
        platform,
        campaign_id,
        argMax(campaign_name, _ver) AS campaign_name,
        sum(impressions) AS impressions,
        sum(clicks) AS clicks,
        CAST(sum(spend) AS Decimal(18, 2)) AS spend
    FROM
    (
        SELECT stat_date, 'vk' AS platform, ad_plan_id AS campaign_id, ad_plan_name AS campaign_name,
               impressions, clicks, spend, _ver
        FROM fact_vk_ads_daily FINAL
        UNION ALL
        SELECT stat_date, 'direct' AS platform, campaign_id, campaign_name,
               impressions, clicks, spend, _ver
        FROM fact_direct_daily FINAL
    )
    GROUP BY stat_date, platform, campaign_id
)
SETTINGS do_not_merge_across_partitions_select_final = 1;

-- Sales against parsed spend per show (city, event_date), from the newest mart generation.
CREATE OR REPLACE VIEW v_romi_kpi AS
SELECT
    city,
    event_date,
    tickets_sold,
    revenue,
    CAST(spend_vk + spend_direct AS Decimal(18, 2)) AS spend,
    spend_vk,
    spend_direct,
    if(spend = 0, NULL, toFloat64(revenue) / toFloat64(spend)) AS romi,
    multiIf(romi IS NULL, 'grey', romi > 1.5, 'green', romi >= 1, 'yellow', 'red') AS romi_color
FROM mart_romi_by_show
WHERE generation = (SELECT max(generation) FROM mart_romi_by_show);

CREATE OR REPLACE VIEW v_data_freshness AS
SELECT
    s.source AS source,
    r.last_success_at AS last_success_at,
    d.last_data_date AS last_data_date,
    if(d.last_data_date IS NULL, NULL,
       toInt32(toDate(now(), 'Europe/Moscow') - d.last_data_date)) AS days_behind,
    r.last_status AS last_status,
    r.last_error AS last_error
FROM
(
    SELECT arrayJoin(['qtickets_sheets', 'qtickets_api', 'vk_ads', 'direct', 'gmail']) AS source
) AS s
LEFT JOIN
(
    SELECT
        job AS source,
        CAST(maxIf(finished_at, status = 'success'), 'Nullable(DateTime(\'Europe/Moscow\'))') AS last_success_at,
        CAST(argMax(status, tuple(started_at, _ver)), 'Nullable(String)') AS last_status,
        CAST(if(argMax(status, tuple(started_at, _ver)) = 'error',
                argMax(message, tuple(started_at, _ver)), ''), 'Nullable(String)') AS last_error
    FROM meta_job_runs FINAL
    WHERE status != 'dry_run'
    GROUP BY job
) AS r ON r.source = s.source
LEFT JOIN
(
    SELECT source, last_data_date
    FROM mart_source_dates
    WHERE generation = (SELECT max(generation) FROM mart_source_dates)
) AS d ON d.source = s.source
SETTINGS join_use_nulls = 1;
