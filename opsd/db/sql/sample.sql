-- sample: everything one health sample reads, in one round trip (one statement, one scan of the backends).
-- From pg_stat_get_activity (what pg_stat_activity reads): client sessions grouped by state, database, user and
-- application (with the server's limits); the sessions waiting on a heavyweight lock and who blocks them
-- (pg_blocking_pids() only for those); the details of every session in those blocking trees and their locks
-- (pg_locks read only when some session waits); the sessions with a long transaction or idle in one (at most 50,
-- oldest first). Names of databases and roles are looked up for the groups and the few sessions shown, not for
-- every backend. Then the deadlocks counted over all databases, and replication: the recovery state, each
-- standby fed by this server (pg_stat_get_wal_senders() and each sender's own row), every replication slot with
-- the WAL it retains, and on a standby its own receiver. Uncorrelated subqueries are init plans: run only when
-- the CASE that holds them needs their value.
WITH a AS MATERIALIZED (
    SELECT pid, datid, usesysid, backend_type, xact_start, state_change, wait_event_type, wait_event, state,
           application_name, client_addr, query
    FROM pg_stat_get_activity(NULL)
),
w AS MATERIALIZED (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM a
    WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()
),
tree AS MATERIALIZED (
    SELECT pid FROM w UNION SELECT unnest(blocked_by) FROM w
),
rec AS MATERIALIZED (
    SELECT pg_is_in_recovery() AS standby
),
head AS (
    SELECT CASE WHEN rec.standby THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS lsn,
           CASE WHEN rec.standby THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS slot_lsn
    FROM rec
),
session AS NOT MATERIALIZED (  -- inlined where it is used: names looked up only for the rows kept
    SELECT a.pid, coalesce(a.state, '') AS state, coalesce(r.rolname::text, '') AS usename,
           coalesce(d.datname::text, '') AS datname, coalesce(a.application_name, '') AS application_name,
           coalesce(host(a.client_addr), 'local') AS client, coalesce(a.wait_event_type, '') AS wait_event_type,
           coalesce(a.wait_event, '') AS wait_event,
           extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_age,
           extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_age,
           coalesce(a.query, '') AS query
    FROM a
    LEFT JOIN pg_database d ON d.oid = a.datid
    LEFT JOIN pg_roles r ON r.oid = a.usesysid
)
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved,
       coalesce((SELECT json_agg(g ORDER BY g.sessions DESC)
                 FROM (SELECT coalesce(c.state, 'unknown') AS state, coalesce(d.datname::text, '') AS datname,
                              coalesce(r.rolname::text, '') AS usename, c.application_name, c.sessions
                       FROM (SELECT state, datid, usesysid, coalesce(application_name, '') AS application_name,
                                    count(*)::int AS sessions
                             FROM a WHERE backend_type = 'client backend'
                             GROUP BY 1, 2, 3, 4) c
                       LEFT JOIN pg_database d ON d.oid = c.datid
                       LEFT JOIN pg_roles r ON r.oid = c.usesysid) g), '[]') AS groups,
       coalesce((SELECT json_agg(w) FROM w), '[]') AS waiters,
       coalesce((SELECT json_agg(s) FROM session s
                 WHERE s.pid IN (SELECT pid FROM tree)), '[]') AS tree_sessions,
       coalesce((SELECT json_agg(l) FROM (
                    SELECT s.* FROM a JOIN session s USING (pid)
                    WHERE a.backend_type = 'client backend'
                      AND a.pid <> pg_backend_pid()
                      AND a.xact_start IS NOT NULL
                      AND (clock_timestamp() - a.xact_start > make_interval(secs => %(long_xact)s)
                           OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
                               AND clock_timestamp() - a.state_change > make_interval(secs => %(idle_xact)s)))
                    ORDER BY a.xact_start
                    LIMIT 50) l), '[]') AS long_sessions,
       CASE WHEN EXISTS (SELECT 1 FROM w) THEN coalesce((
           SELECT json_agg(k) FROM (
               SELECT l.pid, l.locktype, l.mode, l.granted,
                      CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END AS relation,
                      extract(epoch FROM clock_timestamp() - l.waitstart)::float8 AS wait_age
               FROM pg_locks l
               WHERE l.pid IN (SELECT pid FROM tree)
                 AND l.locktype IN ('relation', 'tuple', 'transactionid', 'virtualxid', 'object', 'advisory',
                                    'page', 'extend')) k), '[]') ELSE '[]' END AS locks,
       (SELECT coalesce(sum(deadlocks), 0)::bigint FROM pg_stat_database) AS deadlocks,
       (SELECT standby FROM rec) AS in_recovery,
       coalesce((SELECT json_agg(x ORDER BY x.name, x.pid) FROM (
           SELECT w.pid, coalesce(a.application_name, '') AS name, coalesce(host(a.client_addr), 'local') AS client,
                  coalesce(w.state, '') AS state, coalesce(w.sync_state, '') AS sync_state,
                  pg_wal_lsn_diff(head.lsn, w.write_lsn)::bigint AS write_lag_bytes,
                  pg_wal_lsn_diff(head.lsn, w.flush_lsn)::bigint AS flush_lag_bytes,
                  pg_wal_lsn_diff(head.lsn, w.replay_lsn)::bigint AS replay_lag_bytes,
                  extract(epoch FROM w.write_lag)::float8 AS write_lag,
                  extract(epoch FROM w.flush_lag)::float8 AS flush_lag,
                  extract(epoch FROM w.replay_lag)::float8 AS replay_lag
           FROM pg_stat_get_wal_senders() w
           CROSS JOIN LATERAL pg_stat_get_activity(w.pid) a
           CROSS JOIN head) x), '[]') AS standbys,
       coalesce((SELECT json_agg(y ORDER BY y.name) FROM (
           SELECT s.slot_name::text AS name, s.slot_type AS kind, s.active,
                  pg_wal_lsn_diff(head.slot_lsn, s.restart_lsn)::bigint AS retained_bytes, s.wal_status
           FROM pg_replication_slots s CROSS JOIN head) y), '[]') AS slots,
       CASE WHEN (SELECT standby FROM rec) THEN (
           SELECT row_to_json(z) FROM (
               SELECT coalesce((SELECT CASE WHEN r.status = 'streaming' THEN 'streaming'
                                            ELSE 'receiver ' || r.status END FROM pg_stat_wal_receiver r),
                               CASE WHEN current_setting('restore_command') <> '' THEN 'archive'
                                    ELSE 'stopped' END) AS source,
                      coalesce((SELECT r.sender_host || ':' || r.sender_port FROM pg_stat_wal_receiver r), '')
                          AS sender,
                      pg_last_wal_receive_lsn()::text AS receive_lsn,
                      pg_last_wal_replay_lsn()::text AS replay_lsn,
                      pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS replay_lag_bytes,
                      (CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END)::float8 AS replay_lag,
                      pg_last_xact_replay_timestamp() AS last_replayed_at,
                      pg_get_wal_replay_pause_state() <> 'not paused' AS paused) z) END AS receiver
