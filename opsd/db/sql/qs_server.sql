-- qs_server: what a query-statistics snapshot needs to know of a server before it reads counters (one row):
-- when the postmaster started, its identity, role and timeline (a restart, a failover, another server behind the
-- same address), when the cumulative statistics were last discarded (a start after a crash or an immediate
-- shutdown resets every fixed-numbered statistic with one timestamp; pg_stat_reset_shared() resets each at its
-- own instant, so three equal stats_reset mean a discard), whether pg_stat_statements is preloaded (NULL: a
-- role without pg_read_all_settings does not see shared_preload_libraries in pg_settings) and
-- created in this database (its schema: opsd's search_path is pg_catalog, pg_temp), compute_query_id, and
-- whether the connected role may read every role's statement texts (pg_read_all_stats). Catalog reads only.
SELECT pg_catalog.pg_postmaster_start_time()                               AS started_at,
       (SELECT system_identifier FROM pg_catalog.pg_control_system())      AS system_identifier,
       (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint())        AS timeline,
       pg_catalog.pg_is_in_recovery()                                      AS in_recovery,
       (SELECT b.stats_reset
        FROM pg_catalog.pg_stat_bgwriter b, pg_catalog.pg_stat_wal w, pg_catalog.pg_stat_archiver a
        WHERE b.stats_reset = w.stats_reset AND w.stats_reset = a.stats_reset) AS discarded_at,
       (SELECT setting FROM pg_catalog.pg_settings
        WHERE name = 'shared_preload_libraries')                           AS preload,
       pg_catalog.current_setting('compute_query_id')                      AS compute_query_id,
       (SELECT n.nspname::text
        FROM pg_catalog.pg_extension e
        JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements')                            AS pgss_schema,
       pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       pg_catalog.now()                                                    AS now
