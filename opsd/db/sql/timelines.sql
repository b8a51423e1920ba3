-- timelines: the timeline of the last checkpoint (pg_control) and the timeline of the WAL written now. They
-- differ right after a promotion, until the first checkpoint on the new timeline (pgBackRest then refuses a
-- backup: "WAL timeline 2 does not match pg_control timeline 1").
SELECT (SELECT timeline_id FROM pg_control_checkpoint())                          AS checkpoint_timeline,
       ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS wal_timeline
