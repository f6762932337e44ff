-- Read path, second step (bench: 10 M sales rows, 2 M ad rows). Five views now read a mart
-- table that holds exactly their rows, so a dashboard query costs what it costs on a plain table.
-- Each `calc_*` view keeps the view's rules (CONTRACT §4); `zakaz_common.marts.refresh_marts`
-- fills a scratch copy of each `mart_*` from its `calc_*` after every run and swaps it in with
-- EXCHANGE TABLES (atomic): a reader sees the old rows or the new ones, never a half.
-- Marts are as of the last finished run; runs are the only thing that changes the facts.
-- v_sales_latest and v_campaign_performance stay live (they meet their budget reading the facts).

DROP VIEW IF EXISTS v_romi_kpi;

DROP VIEW IF EXISTS v_data_freshness;

DROP TABLE IF EXISTS mart_romi_by_show;

DROP TABLE IF EXISTS mart_source_dates;

-- Sales of the last 15 days (one spare day, so the view's 14 days hold after midnight too).
-- The date filter sits under FINAL, so only the newest partitions are merged.
CREATE OR REPLACE VIEW calc_sales_14d AS
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
            WHERE sale_date >= toDate(now(), 'Europe/Moscow') - 14
        )
        GROUP BY sale_date, event_id
    )
) AS s
LEFT JOIN dim_events AS e ON e.event_id = s.event_id
SETTINGS join_use_nulls = 0, do_not_merge_across_partitions_select_final = 1;

CREATE OR REPLACE VIEW calc_marketing_daily AS
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

-- Sales against parsed spend per show; romi and its colour are computed by v_romi_kpi.
CREATE OR REPLACE VIEW calc_romi_kpi AS
SELECT
    city,
    event_date,
    toInt64(sum(sold)) AS tickets_sold,
    CAST(sum(rev) AS Decimal(18, 2)) AS revenue,
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
    FROM calc_marketing_daily
    WHERE city != '' AND event_date IS NOT NULL
)
GROUP BY city, event_date;

CREATE OR REPLACE VIEW calc_inventory AS
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

-- One row per source, including sources that never ran; dry runs are ignored. days_behind
-- depends on the clock, so v_data_freshness computes it when read.
CREATE OR REPLACE VIEW calc_data_freshness AS
SELECT
    s.source AS source,
    r.last_success_at AS last_success_at,
    d.last_data_date AS last_data_date,
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
    FROM fact_qtickets_sales_daily FINAL GROUP BY source
    UNION ALL
    SELECT 'vk_ads', CAST(max(stat_date), 'Nullable(Date)') FROM fact_vk_ads_daily FINAL
    GROUP BY 'vk_ads'
    UNION ALL
    SELECT 'direct', CAST(max(stat_date), 'Nullable(Date)') FROM fact_direct_daily FINAL
    GROUP BY 'direct'
) AS d ON d.source = s.source
SETTINGS join_use_nulls = 1, do_not_merge_across_partitions_select_final = 1;

CREATE TABLE IF NOT EXISTS mart_sales_14d
ENGINE = MergeTree ORDER BY (city, sale_date)
EMPTY AS SELECT * FROM calc_sales_14d;

CREATE TABLE IF NOT EXISTS mart_marketing_daily
ENGINE = MergeTree ORDER BY (city, stat_date)
EMPTY AS SELECT * FROM calc_marketing_daily;

CREATE TABLE IF NOT EXISTS mart_romi_kpi
ENGINE = MergeTree ORDER BY city
EMPTY AS SELECT * FROM calc_romi_kpi;

CREATE TABLE IF NOT EXISTS mart_inventory
ENGINE = MergeTree ORDER BY city
EMPTY AS SELECT * FROM calc_inventory;

CREATE TABLE IF NOT EXISTS mart_data_freshness
ENGINE = MergeTree ORDER BY source
EMPTY AS SELECT * FROM calc_data_freshness;

CREATE OR REPLACE VIEW v_sales_14d AS
SELECT sale_date, event_id, event_name, event_date, city, tickets_sold, revenue, source
FROM mart_sales_14d
WHERE sale_date >= toDate(now(), 'Europe/Moscow') - 13
  AND sale_date <= toDate(now(), 'Europe/Moscow');

CREATE OR REPLACE VIEW v_marketing_daily AS
SELECT stat_date, platform, city, event_date, impressions, clicks, spend
FROM mart_marketing_daily;

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
FROM mart_romi_kpi;

CREATE OR REPLACE VIEW v_inventory AS
SELECT event_id, event_name, event_date, city, tickets_total, tickets_left, updated_at
FROM mart_inventory;

CREATE OR REPLACE VIEW v_data_freshness AS
SELECT
    source,
    last_success_at,
    last_data_date,
    if(last_data_date IS NULL, NULL,
       toInt32(toDate(now(), 'Europe/Moscow') - last_data_date)) AS days_behind,
    last_status,
    last_error
FROM mart_data_freshness;
