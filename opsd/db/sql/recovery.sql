-- recovery: where a restored server stands while (and after) it replays WAL.
SELECT pg_is_in_recovery()                    AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE 'not in recovery' END AS pause_state,
       pg_last_xact_replay_timestamp()        AS last_replayed_xact,
       pg_last_wal_replay_lsn()::text         AS replay_lsn,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline
