-- Sales staging, and the qtickets_api engine's Null input that feeds it: the columns whose
-- values repeat from row to row (events, their names and cities, UTM tags, the page a row came
-- from) are stored as dictionaries. Staging a million orders' sales writes and groups them
-- faster (docs/performance.md); the values are the same.

ALTER TABLE stg_qtickets_sales
    MODIFY COLUMN event_id LowCardinality(String),
    MODIFY COLUMN event_name LowCardinality(String),
    MODIFY COLUMN city LowCardinality(String),
    MODIFY COLUMN page_digest LowCardinality(String) DEFAULT '';

ALTER TABLE stg_qtickets_sales_utm
    MODIFY COLUMN event_id LowCardinality(String),
    MODIFY COLUMN utm_source LowCardinality(String),
    MODIFY COLUMN utm_medium LowCardinality(String),
    MODIFY COLUMN utm_campaign LowCardinality(String),
    MODIFY COLUMN utm_content LowCardinality(String),
    MODIFY COLUMN utm_term LowCardinality(String),
    MODIFY COLUMN page_digest LowCardinality(String) DEFAULT '';

ALTER TABLE stg_qtickets_orders_in
    MODIFY COLUMN page_digest LowCardinality(String),
    MODIFY COLUMN event_id LowCardinality(String),
    MODIFY COLUMN event_name LowCardinality(String),
    MODIFY COLUMN city LowCardinality(String),
    MODIFY COLUMN utm_source LowCardinality(String),
    MODIFY COLUMN utm_medium LowCardinality(String),
    MODIFY COLUMN utm_campaign LowCardinality(String),
    MODIFY COLUMN utm_content LowCardinality(String),
    MODIFY COLUMN utm_term LowCardinality(String);
