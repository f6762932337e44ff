-- Skipping unchanged upstream pages (qtickets_api orders).
-- Every staged sales row remembers the digest of the upstream page it came from, and after a
-- successful publish the run writes one mark per page: its number, digest, paging and counts.
-- The next run over the same window reads the marks of the last successful run; a page whose
-- bytes hash to the same digest is not decoded again: its staged rows are copied forward from
-- that run. Marks live a day less than staging, so a mark never outlives the rows it points to.

ALTER TABLE stg_qtickets_sales ADD COLUMN IF NOT EXISTS page_digest String DEFAULT '';

ALTER TABLE stg_qtickets_sales_utm ADD COLUMN IF NOT EXISTS page_digest String DEFAULT '';

CREATE TABLE IF NOT EXISTS meta_page_marks
(
    source    LowCardinality(String),
    stream    LowCardinality(String),
    scope     String,
    run_id    String,
    page      UInt32,
    digest    String,
    rows      UInt32,
    per_page  UInt32,
    total     UInt64,
    counts    String,
    loaded_at DateTime('Europe/Moscow')
)
ENGINE = MergeTree
ORDER BY (source, stream, scope, run_id, page)
TTL loaded_at + INTERVAL 6 DAY;
