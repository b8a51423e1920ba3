-- ix_walsenders: on a primary, how many physical standbys stream from it (pg_stat_replication state streaming,
-- not a logical slot's walsender, not a WAL archiver or a base backup by its application_name); a row whose
-- state this role may not see (no pg_read_all_stats) counts as one. NULL on a standby (not checked there).
SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL ELSE (
         SELECT pg_catalog.count(*)::int
         FROM pg_catalog.pg_stat_replication r
         WHERE (r.state = 'streaming' OR r.state IS NULL)
           AND r.application_name IS DISTINCT FROM 'pg_basebackup'
           AND r.application_name IS DISTINCT FROM 'pg_receivewal'
           AND r.application_name IS DISTINCT FROM 'barman_receive_wal'
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s
                           WHERE s.active_pid = r.pid AND s.slot_type = 'logical')) END AS streaming
