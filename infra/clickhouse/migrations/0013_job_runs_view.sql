-- meta_job_runs is one row per run for every reader (CONTRACT §4), not only for those who
-- remember FINAL. A run's row is rewritten as it moves queued → running → done, so the storage
-- holds several versions of a run until a merge; read without FINAL, the old table showed a
-- finished run twice (`running` and `success`). The storage keeps its rows and becomes
-- meta_job_runs_log, which every writer inserts into; meta_job_runs is now a view over it that
-- collapses the versions, so a plain SELECT sees each run once, at every moment.

RENAME TABLE meta_job_runs TO meta_job_runs_log;

-- The contract's columns first, then ours: rows_rejected, params, trigger, and _ver (it orders
-- runs that started in the same second).
CREATE OR REPLACE VIEW meta_job_runs AS
SELECT
    run_id,
    job,
    status,
    started_at,
    finished_at,
    rows_processed,
    message,
    metrics,
    rows_rejected,
    params,
    trigger,
    _ver
FROM meta_job_runs_log FINAL;

-- As in 0009, reading the view (FINAL is not allowed on a view, and no longer needed).
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
    FROM meta_job_runs
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
