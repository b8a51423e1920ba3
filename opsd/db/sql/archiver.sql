-- archiver: pg_stat_archiver plus the WAL still waiting to be archived (.ready files).
-- pg_ls_archive_statusdir() needs superuser or pg_monitor; the count is NULL when it is not allowed.
SELECT a.archived_count,
       a.last_archived_wal,
       a.last_archived_time,
       a.failed_count,
       a.last_failed_wal,
       a.last_failed_time,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_wal,
       r.ready_count,
       r.oldest_ready,
       now() AS now
FROM pg_stat_archiver a
LEFT JOIN LATERAL (
    SELECT count(*)::int AS ready_count, min(modification) AS oldest_ready
    FROM pg_ls_archive_statusdir()
    WHERE name LIKE '%%.ready'
) r ON has_function_privilege('pg_ls_archive_statusdir()', 'EXECUTE')
