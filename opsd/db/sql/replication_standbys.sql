-- Each standby as this server sees it (pg_stat_replication): lag in bytes behind this server's WAL position
-- (its current one on a primary, what it received on a cascading standby), and PostgreSQL's own lag times
-- (NULL when it has nothing to measure, e.g. on an idle primary).
with head as (
    select case when pg_is_in_recovery() then pg_last_wal_receive_lsn() else pg_current_wal_lsn() end as lsn
)
select coalesce(r.application_name, '') as name,
       coalesce(host(r.client_addr), 'local') as client,
       coalesce(r.state, '') as state,
       coalesce(r.sync_state, '') as sync_state,
       pg_wal_lsn_diff(head.lsn, r.write_lsn)::bigint as write_lag_bytes,
       pg_wal_lsn_diff(head.lsn, r.flush_lsn)::bigint as flush_lag_bytes,
       pg_wal_lsn_diff(head.lsn, r.replay_lsn)::bigint as replay_lag_bytes,
       extract(epoch from r.write_lag)::float8 as write_lag,
       extract(epoch from r.flush_lag)::float8 as flush_lag,
       extract(epoch from r.replay_lag)::float8 as replay_lag
from pg_stat_replication r, head
order by r.application_name, r.pid
