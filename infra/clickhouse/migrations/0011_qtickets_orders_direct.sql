-- qtickets_api: the engine stages its sales directly (zakaz_qtickets_api.engine).
-- Orders the engine reads are inserted into stg_qtickets_orders_in, which keeps nothing: three
-- materialized views take what each order gives, in the same pass. Sales go to the sales and
-- sales-by-UTM staging tables; every page gets its counts in stg_qtickets_order_pages (one row
-- per page and insert block; read back with sum/min/max). Rows of a page the engine could not
-- read completely are deleted again before the Python reader stages that page. The engine's
-- rows are numbered from 2^48 up (page << 16 | position), apart from the rows Python stages.
-- stg_qtickets_orders, where the engine used to write every order first, is gone.

DROP TABLE IF EXISTS stg_qtickets_orders;

ALTER TABLE stg_qtickets_sales ADD COLUMN IF NOT EXISTS order_id String DEFAULT '';

CREATE TABLE IF NOT EXISTS stg_qtickets_orders_in
(
    run_id       String,
    _seq         UInt64,
    loaded_at    DateTime('Europe/Moscow'),
    page_digest  String,
    page         UInt32,
    per_page     UInt32,
    total        UInt64,
    order_id     String,
    order_number UInt64,
    status       LowCardinality(String),
    sale_date    Date,
    event_id     String,
    event_name   String,
    city         String,
    tickets_sold Int64,
    revenue      Decimal(18, 2),
    utm_source   String,
    utm_medium   String,
    utm_campaign String,
    utm_content  String,
    utm_term     String
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS stg_qtickets_order_pages
(
    run_id         String,
    loaded_at      DateTime('Europe/Moscow'),
    page_digest    String,
    page           UInt32,
    per_page       UInt32,
    total          UInt64,
    orders         UInt64,
    unread         UInt64,
    unpaid         UInt64,
    cancelled      UInt64,
    refunded       UInt64,
    outside_window UInt64,
    sales          UInt64,
    tickets_sold   Int64,
    revenue        Decimal(38, 2),
    -- The smallest and largest numeric order id on the page (0 when an id is not a number):
    -- pages in id order cannot share an order.
    first_number   UInt64,
    last_number    UInt64
)
ENGINE = MergeTree
ORDER BY (run_id, page_digest)
TTL loaded_at + INTERVAL 7 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_qtickets_orders_sales TO stg_qtickets_sales
AS SELECT run_id, _seq, loaded_at, page_digest, order_id, 'qtickets_api' AS source, sale_date,
          event_id, event_name, city, tickets_sold, revenue
FROM stg_qtickets_orders_in
WHERE status = 'sale';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_qtickets_orders_sales_utm TO stg_qtickets_sales_utm
AS SELECT run_id, _seq, loaded_at, page_digest, 'qtickets_api' AS source, sale_date, event_id,
          utm_source, utm_medium, utm_campaign, utm_content, utm_term, tickets_sold, revenue
FROM stg_qtickets_orders_in
WHERE status = 'sale';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_qtickets_order_pages TO stg_qtickets_order_pages
AS SELECT run_id, any(loaded_at) AS loaded_at, page_digest, any(page) AS page,
          any(per_page) AS per_page, any(total) AS total, count() AS orders,
          countIf(status = 'unread') AS unread, countIf(status = 'unpaid') AS unpaid,
          countIf(status = 'cancelled') AS cancelled, countIf(status = 'refunded') AS refunded,
          countIf(status = 'outside_window') AS outside_window, countIf(status = 'sale') AS sales,
          sumIf(tickets_sold, status = 'sale') AS tickets_sold,
          CAST(sumIf(revenue, status = 'sale') AS Decimal(38, 2)) AS revenue,
          min(order_number) AS first_number, max(order_number) AS last_number
FROM stg_qtickets_orders_in
GROUP BY run_id, page_digest;
