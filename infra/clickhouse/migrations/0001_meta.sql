-- Run log, alerts and rejected rows: what every deployment has (CONTRACT §4).

-- One live row per run; a run's row is rewritten (higher _ver) as it moves queued → running → done.
CREATE TABLE IF NOT EXISTS meta_job_runs
(
    run_id         String,
    job            LowCardinality(String),
    status         LowCardinality(String),
    started_at     DateTime('Europe/Moscow'),
    finished_at    Nullable(DateTime('Europe/Moscow')),
    rows_processed UInt64,
    rows_rejected  UInt64,
    message        String,
    metrics        String,
    params         String,
    trigger        LowCardinality(String),
    _ver           UInt64
)
ENGINE = ReplacingMergeTree(_ver)
ORDER BY (job, run_id);

-- One live row per alert; resolving or notifying rewrites it with a higher _ver.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id    String,
    created_at  DateTime('Europe/Moscow'),
    job         LowCardinality(String),
    severity    LowCardinality(String),
    kind        LowCardinality(String),
    message     String,
    notified    UInt8,
    resolved_at Nullable(DateTime('Europe/Moscow')),
    _ver        UInt64
)
ENGINE = ReplacingMergeTree(_ver)
ORDER BY (job, kind, alert_id);

-- Rows that could not be read; `raw` has PII removed before it gets here.
CREATE TABLE IF NOT EXISTS rejects
(
    loaded_at DateTime('Europe/Moscow'),
    run_id    String,
    source    LowCardinality(String),
    entity    LowCardinality(String),
    raw       String,
    reason    String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(loaded_at)
ORDER BY (source, loaded_at)
TTL loaded_at + INTERVAL 180 DAY;
