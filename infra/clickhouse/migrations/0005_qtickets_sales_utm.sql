-- QTickets API sales by the UTM tags of the visit that bought (orders carry them), for attribution.
-- Same rules as fact_qtickets_sales_daily: ReplacingMergeTree(_ver, _deleted), a reload of a date
-- window replaces that window's keys; the staging table holds one run's rows until published.

CREATE TABLE IF NOT EXISTS fact_qtickets_sales_utm_daily
(
    sale_date    Date,
    event_id     String,
    source       LowCardinality(String),
    utm_source   String,
    utm_medium   String,
    utm_campaign String,
    utm_content  String,
    utm_term     String,
    tickets_sold Int64,
    revenue      Decimal(18, 2),
    row_hash     UInt64,
    run_id       String,
    loaded_at    DateTime('Europe/Moscow'),
    _ver         UInt64,
    _deleted     UInt8
)
ENGINE = ReplacingMergeTree(_ver, _deleted)
PARTITION BY toYYYYMM(sale_date)
ORDER BY (source, sale_date, event_id, utm_source, utm_medium, utm_campaign, utm_content, utm_term);

CREATE TABLE IF NOT EXISTS stg_qtickets_sales_utm
(
    run_id       String,
    _seq         UInt64,
    loaded_at    DateTime('Europe/Moscow'),
    sale_date    Date,
    event_id     String,
    source       LowCardinality(String),
    utm_source   String,
    utm_medium   String,
    utm_campaign String,
    utm_content  String,
    utm_term     String,
    tickets_sold Int64,
    revenue      Decimal(18, 2)
)
ENGINE = MergeTree
ORDER BY (run_id, _seq)
TTL loaded_at + INTERVAL 7 DAY;
