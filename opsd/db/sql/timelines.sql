-- timelines: asked at the last moment before a backup. Whether the server is (still) a primary, the timeline
-- of its last checkpoint (pg_control) and the timeline of the WAL written now. Those two differ right after a
-- promotion, until the first checkpoint on the new timeline (pgBackRest then refuses a backup: "WAL timeline 2
-- does not match pg_control timeline 1"). On a standby the WAL timeline is NULL (no WAL is written there).
SELECT pg_is_in_recovery()                                       AS in_recovery,
       (SELECT timeline_id FROM pg_control_checkpoint())         AS checkpoint_timeline,
       CASE WHEN NOT pg_is_in_recovery()
            THEN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS wal_timeline
