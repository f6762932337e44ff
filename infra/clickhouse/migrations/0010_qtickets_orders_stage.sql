-- qtickets_api: the engine reads pages of orders itself (zakaz_qtickets_api.engine).
-- Each order of a page the engine read becomes one row here: only what a sale needs (the
-- buyer's fields are never parsed), with the status the CONTRACT §5 rules give it, or `unread`
-- when the order is outside the strict shapes the SQL reads, in which case the whole page is
-- read by the Python reader instead. Sales are staged from here into stg_qtickets_sales and
-- stg_qtickets_sales_utm; rows live as long as the other staging rows.

CREATE TABLE IF NOT EXISTS stg_qtickets_orders
(
    run_id       String,
    loaded_at    DateTime('Europe/Moscow'),
    page_digest  LowCardinality(String),
    page         UInt32,
    per_page     UInt32,
    total        UInt64,
    order_id     String,
    status       LowCardinality(String),
    sale_date    Date,
    event_id     LowCardinality(String),
    tickets_sold Int64,
    revenue      Decimal(18, 2),
    utm_source   LowCardinality(String),
    utm_medium   LowCardinality(String),
    utm_campaign LowCardinality(String),
    utm_content  LowCardinality(String),
    utm_term     LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY run_id
TTL loaded_at + INTERVAL 7 DAY;
