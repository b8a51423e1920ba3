-- This standby's side: where WAL comes from (a streaming WAL receiver, or restore_command alone), what it
-- received and replayed, how far replay is behind, and whether replay is paused.
with r as (select status, sender_host, sender_port from pg_stat_wal_receiver)
select coalesce((select case when r.status = 'streaming' then 'streaming' else 'receiver ' || r.status end from r),
                case when current_setting('restore_command') <> '' then 'archive' else 'stopped' end) as source,
       coalesce((select r.sender_host || ':' || r.sender_port from r), '') as sender,
       pg_last_wal_receive_lsn()::text as receive_lsn,
       pg_last_wal_replay_lsn()::text as replay_lsn,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint as replay_lag_bytes,
       (case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
             else extract(epoch from now() - pg_last_xact_replay_timestamp()) end)::float8 as replay_lag,
       pg_last_xact_replay_timestamp() as last_replayed_at,
       pg_get_wal_replay_pause_state() <> 'not paused' as paused
