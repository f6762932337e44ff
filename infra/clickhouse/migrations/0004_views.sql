-- BI views: what DataLens reads. Names, columns and rules are fixed by CONTRACT §4.
-- Every fact is read with FINAL, so each key appears once however often a load ran, and keys
-- retracted by a reload (tombstones) are gone.

-- One row per event_id: each attribute from the highest-priority source that has it
-- (qtickets_sheets > qtickets_api > gmail).
CREATE OR REPLACE VIEW dim_events AS
SELECT
    event_id,
    argMinIf(event_name, prio, event_name != '') AS event_name,
    argMinIf(event_date, prio, event_date IS NOT NULL) AS event_date,
    argMinIf(city, prio, city != '') AS city,
    argMin(source, prio) AS source,
    max(loaded_at) AS updated_at
FROM
(
    SELECT
        event_id, event_name, event_date, city, source, loaded_at,
        multiIf(source = 'qtickets_sheets', 1, source = 'qtickets_api', 2, source = 'gmail', 3, 9) AS prio
    FROM dim_events_src FINAL
)
GROUP BY event_id;

-- One sales source per (sale_date, event_id): the highest-priority one that has the key.
-- Sources are never summed together.
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
SETTINGS join_use_nulls = 0;

-- The last 14 days, today (Moscow) included.
CREATE OR REPLACE VIEW v_sales_14d AS
SELECT sale_date, event_id, event_name, event_date, city, tickets_sold, revenue, source
FROM v_sales_latest
WHERE sale_date >= toDate(now(), 'Europe/Moscow') - 13
  AND sale_date <= toDate(now(), 'Europe/Moscow');

-- Ad rows of both platforms, one row per (stat_date, platform, city, event_date).
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
HAVING impressions != 0 OR clicks != 0 OR spend != 0;

-- Per campaign (VK: the ad plan) and day; ctr and cpc unrounded, NULL when the divisor is 0.
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
);

-- Sales against parsed spend per show (city, event_date). Unparsed spend (city = '') is left out.
CREATE OR REPLACE VIEW v_romi_kpi AS
SELECT
    city,
    event_date,
    tickets_sold,
    revenue,
    spend,
    spend_vk,
    spend_direct,
    if(spend = 0, NULL, toFloat64(revenue) / toFloat64(spend)) AS romi,
    multiIf(romi IS NULL, 'grey', romi > 1.5, 'green', romi >= 1, 'yellow', 'red') AS romi_color
FROM
(
    SELECT
        city,
        event_date,
        toInt64(sum(sold)) AS tickets_sold,
        CAST(sum(rev) AS Decimal(18, 2)) AS revenue,
        CAST(sum(vk) + sum(direct) AS Decimal(18, 2)) AS spend,
        CAST(sum(vk) AS Decimal(18, 2)) AS spend_vk,
        CAST(sum(direct) AS Decimal(18, 2)) AS spend_direct
    FROM
    (
        SELECT city, event_date, tickets_sold AS sold, revenue AS rev,
               toDecimal64(0, 2) AS vk, toDecimal64(0, 2) AS direct
        FROM v_sales_latest
        UNION ALL
        SELECT city, event_date, toInt64(0) AS sold, toDecimal64(0, 2) AS rev,
               if(platform = 'vk', spend, toDecimal64(0, 2)) AS vk,
               if(platform = 'direct', spend, toDecimal64(0, 2)) AS direct
        FROM v_marketing_daily
        WHERE city != '' AND event_date IS NOT NULL
    )
    GROUP BY city, event_date
);

-- Seat inventory per event from the highest-priority source that has it.
CREATE OR REPLACE VIEW v_inventory AS
SELECT
    i.event_id AS event_id,
    if(e.event_name != '', e.event_name, i.event_name) AS event_name,
    if(e.event_date IS NOT NULL, e.event_date, i.event_date) AS event_date,
    if(e.city != '', e.city, i.city) AS city,
    i.tickets_total AS tickets_total,
    i.tickets_left AS tickets_left,
    i.updated_at AS updated_at
FROM
(
    SELECT
        event_id,
        best.1 AS event_name,
        best.2 AS event_date,
        best.3 AS city,
        best.4 AS tickets_total,
        best.5 AS tickets_left,
        best.6 AS updated_at
    FROM
    (
        SELECT
            event_id,
            argMin(tuple(event_name, event_date, city, tickets_total, tickets_left, updated_at),
                   prio) AS best
        FROM
        (
            SELECT *, multiIf(source = 'qtickets_sheets', 1, source = 'qtickets_api', 2, 9) AS prio
            FROM fact_qtickets_inventory_latest FINAL
        )
        GROUP BY event_id
    )
) AS i
LEFT JOIN dim_events AS e ON e.event_id = i.event_id
SETTINGS join_use_nulls = 0;

-- One row per source, including sources that never ran. Dry runs load nothing and are ignored.
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
    SELECT source, CAST(max(sale_date), 'Nullable(Date)') AS last_data_date
    FROM fact_qtickets_sales_daily FINAL
    GROUP BY source
    UNION ALL
    SELECT 'vk_ads' AS source, CAST(max(stat_date), 'Nullable(Date)') AS last_data_date
    FROM fact_vk_ads_daily FINAL
    GROUP BY source
    UNION ALL
    SELECT 'direct' AS source, CAST(max(stat_date), 'Nullable(Date)') AS last_data_date
    FROM fact_direct_daily FINAL
    GROUP BY source
) AS d ON d.source = s.source
SETTINGS join_use_nulls = 1;
