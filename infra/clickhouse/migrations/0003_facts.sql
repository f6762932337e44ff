-- Facts: ReplacingMergeTree(_ver, _deleted). A reload writes changed keys with a newer _ver and
-- tombstones (_deleted = 1) for keys gone upstream; FINAL shows the upstream as it is now.
-- Staging tables hold one run's rows (by run_id) until they are published into the fact.

CREATE TABLE IF NOT EXISTS fact_qtickets_sales_daily
(
    sale_date    Date,
    event_id     String,
    source       LowCardinality(String),
    event_name   String,
    city         String,
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
ORDER BY (source, sale_date, event_id);

CREATE TABLE IF NOT EXISTS stg_qtickets_sales
(
    run_id       String,
    _seq         UInt64,
    loaded_at    DateTime('Europe/Moscow'),
    sale_date    Date,
    event_id     String,
    source       LowCardinality(String),
    event_name   String,
    city         String,
    tickets_sold Int64,
    revenue      Decimal(18, 2)
)
ENGINE = MergeTree
ORDER BY (run_id, _seq)
TTL loaded_at + INTERVAL 7 DAY;

CREATE TABLE IF NOT EXISTS fact_qtickets_inventory_latest
(
    event_id      String,
    source        LowCardinality(String),
    event_name    String,
    event_date    Nullable(Date),
    city          String,
    tickets_total Int64,
    tickets_left  Int64,
    updated_at    DateTime('Europe/Moscow'),
    row_hash      UInt64,
    run_id        String,
    loaded_at     DateTime('Europe/Moscow'),
    _ver          UInt64,
    _deleted      UInt8
)
ENGINE = ReplacingMergeTree(_ver, _deleted)
ORDER BY (source, event_id);

CREATE TABLE IF NOT EXISTS stg_qtickets_inventory
(
    run_id        String,
    _seq          UInt64,
    loaded_at     DateTime('Europe/Moscow'),
    event_id      String,
    source        LowCardinality(String),
    event_name    String,
    event_date    Nullable(Date),
    city          String,
    tickets_total Int64,
    tickets_left  Int64,
    updated_at    DateTime('Europe/Moscow')
)
ENGINE = MergeTree
ORDER BY (run_id, _seq)
TTL loaded_at + INTERVAL 7 DAY;

CREATE TABLE IF NOT EXISTS fact_vk_ads_daily
(
    stat_date     Date,
    account       String,
    ad_plan_id    String,
    ad_plan_name  String,
    ad_group_id   String,
    ad_group_name String,
    banner_id     String,
    impressions   UInt64,
    clicks        UInt64,
    spend         Decimal(18, 2),
    utm_source    String,
    utm_medium    String,
    utm_campaign  String,
    utm_content   String,
    utm_term      String,
    city          String,
    event_date    Nullable(Date),
    row_hash      UInt64,
    run_id        String,
    loaded_at     DateTime('Europe/Moscow'),
    _ver          UInt64,
    _deleted      UInt8
)
ENGINE = ReplacingMergeTree(_ver, _deleted)
PARTITION BY toYYYYMM(stat_date)
ORDER BY (account, stat_date, banner_id);

CREATE TABLE IF NOT EXISTS stg_vk_ads_daily
(
    run_id        String,
    _seq          UInt64,
    loaded_at     DateTime('Europe/Moscow'),
    stat_date     Date,
    account       String,
    ad_plan_id    String,
    ad_plan_name  String,
    ad_group_id   String,
    ad_group_name String,
    banner_id     String,
    impressions   UInt64,
    clicks        UInt64,
    spend         Decimal(18, 2),
    utm_source    String,
    utm_medium    String,
    utm_campaign  String,
    utm_content   String,
    utm_term      String,
    city          String,
    event_date    Nullable(Date)
)
ENGINE = MergeTree
ORDER BY (run_id, _seq)
TTL loaded_at + INTERVAL 7 DAY;

CREATE TABLE IF NOT EXISTS fact_direct_daily
(
    stat_date     Date,
    account       String,
    campaign_id   String,
    campaign_name String,
    ad_group_id   String,
    ad_id         String,
    impressions   UInt64,
    clicks        UInt64,
    spend         Decimal(18, 2),
    include_vat   Bool,
    utm_source    String,
    utm_medium    String,
    utm_campaign  String,
    utm_content   String,
    utm_term      String,
    city          String,
    event_date    Nullable(Date),
    row_hash      UInt64,
    run_id        String,
    loaded_at     DateTime('Europe/Moscow'),
    _ver          UInt64,
    _deleted      UInt8
)
ENGINE = ReplacingMergeTree(_ver, _deleted)
PARTITION BY toYYYYMM(stat_date)
ORDER BY (account, stat_date, campaign_id, ad_group_id, ad_id);

CREATE TABLE IF NOT EXISTS stg_direct_daily
(
    run_id        String,
    _seq          UInt64,
    loaded_at     DateTime('Europe/Moscow'),
    stat_date     Date,
    account       String,
    campaign_id   String,
    campaign_name String,
    ad_group_id   String,
    ad_id         String,
    impressions   UInt64,
    clicks        UInt64,
    spend         Decimal(18, 2),
    include_vat   Bool,
    utm_source    String,
    utm_medium    String,
    utm_campaign  String,
    utm_content   String,
    utm_term      String,
    city          String,
    event_date    Nullable(Date)
)
ENGINE = MergeTree
ORDER BY (run_id, _seq)
TTL loaded_at + INTERVAL 7 DAY;
