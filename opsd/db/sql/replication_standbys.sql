-- Each standby as this server sees it (pg_stat_replication): lag in bytes behind this server's WAL position
-- (its current one on a primary, what it received on a cascading standby), and PostgreSQL's own lag times
-- (NULL when it has nothing to measure, e.g. on an idle primary).
-- pg_stat_get_wal_senders() and each sender's own pg_stat_get_activity(pid): pg_stat_replication would build a row
-- for every backend (1000 connections: a millisecond or two) to keep a handful.
with head as (
    select case when pg_is_in_recovery() then pg_last_wal_receive_lsn() else pg_current_wal_lsn() end as lsn
)
select coalesce(a.application_name, '') as name,
       coalesce(host(a.client_addr), 'local') as client,
       coalesce(w.state, '') as state,
       coalesce(w.sync_state, '') as sync_state,
       pg_wal_lsn_diff(head.lsn, w.write_lsn)::bigint as write_lag_bytes,
       pg_wal_lsn_diff(head.lsn, w.flush_lsn)::bigint as flush_lag_bytes,
       pg_wal_lsn_diff(head.lsn, w.replay_lsn)::bigint as replay_lag_bytes,
       extract(epoch from w.write_lag)::float8 as write_lag,
       extract(epoch from w.flush_lag)::float8 as flush_lag,
       extract(epoch from w.replay_lag)::float8 as replay_lag
from pg_stat_get_wal_senders() w
cross join lateral pg_stat_get_activity(w.pid) a
cross join head
order by a.application_name, w.pid
