-- Gmail sales reports (source `gmail`): every read message is loaded once, by its message id.
-- `stg_gmail_sales` keeps the sales rows of each loaded message (by `src_msg_id`), so that for a
-- (sale_date, event_id) the most recent message can win whatever order messages arrive in;
-- re-staging a message (a run retried after a crash) rewrites the same (src_msg_id, row_no) rows.
-- `gmail_loaded_messages` lists the messages already read, with what came of each.

CREATE TABLE IF NOT EXISTS stg_gmail_sales
(
    src_msg_id       String,
    row_no           UInt32,
    internal_date_ms UInt64,
    msg_at           DateTime('Europe/Moscow'),
    sale_date        Date,
    event_id         String,
    event_name       String,
    city             String,
    tickets_sold     Int64,
    revenue          Decimal(18, 2),
    run_id           String,
    loaded_at        DateTime('Europe/Moscow'),
    _ver             UInt64
)
ENGINE = ReplacingMergeTree(_ver)
ORDER BY (src_msg_id, row_no)
TTL loaded_at + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS gmail_loaded_messages
(
    msg_id           String,
    internal_date_ms UInt64,
    msg_at           DateTime('Europe/Moscow'),
    -- `sales` (rows loaded), `no_data` (no sales table in it), `rejected` (nothing readable)
    outcome          LowCardinality(String),
    sales_rows       UInt32,
    rejected         UInt32,
    run_id           String,
    loaded_at        DateTime('Europe/Moscow'),
    _ver             UInt64
)
ENGINE = ReplacingMergeTree(_ver)
ORDER BY msg_id;
