-- Every replication slot and the WAL it holds back: from its restart_lsn to this server's WAL position.
-- An inactive slot that retains more and more fills pg_wal until the primary stops.
select s.slot_name::text as name,
       s.slot_type as kind,
       s.active,
       pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end,
                       s.restart_lsn)::bigint as retained_bytes,
       s.wal_status
from pg_replication_slots s
order by s.slot_name
