-- City aliases (seeded from zakaz_common/data/cities.csv by `zakaz migrate`) and events.

CREATE TABLE IF NOT EXISTS dim_city
(
    alias    String,
    city     String,
    _ver     UInt64,
    _deleted UInt8
)
ENGINE = ReplacingMergeTree(_ver, _deleted)
ORDER BY alias;

-- Events as each source sees them; `dim_events` (a view) picks one row per event_id.
CREATE TABLE IF NOT EXISTS dim_events_src
(
    event_id   String,
    source     LowCardinality(String),
    event_name String,
    event_date Nullable(Date),
    city       String,
    row_hash   UInt64,
    run_id     String,
    loaded_at  DateTime('Europe/Moscow'),
    _ver       UInt64,
    _deleted   UInt8
)
ENGINE = ReplacingMergeTree(_ver, _deleted)
ORDER BY (source, event_id);

CREATE TABLE IF NOT EXISTS stg_events
(
    run_id     String,
    _seq       UInt64,
    loaded_at  DateTime('Europe/Moscow'),
    event_id   String,
    source     LowCardinality(String),
    event_name String,
    event_date Nullable(Date),
    city       String
)
ENGINE = MergeTree
ORDER BY (run_id, _seq)
TTL loaded_at + INTERVAL 7 DAY;
