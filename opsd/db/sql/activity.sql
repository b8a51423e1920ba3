-- activity: one scan of the backends (pg_stat_get_activity, what pg_stat_activity reads) per health sample,
-- for every part that reads it: client sessions grouped by state, database, user and application (with the
-- server's limits); the sessions waiting on a heavyweight lock and who blocks them (pg_blocking_pids() only for
-- those); the details of every session in
-- those blocking trees; the sessions with a long transaction or idle in one (at most 50, oldest first).
-- Names of databases and roles are looked up for the groups and the few sessions shown, not for every backend.
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
session AS (
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
                 WHERE s.pid IN (SELECT pid FROM w UNION SELECT unnest(blocked_by) FROM w)), '[]') AS tree_sessions,
       coalesce((SELECT json_agg(l) FROM (
                    SELECT s.* FROM a JOIN session s USING (pid)
                    WHERE a.backend_type = 'client backend'
                      AND a.pid <> pg_backend_pid()
                      AND a.xact_start IS NOT NULL
                      AND (clock_timestamp() - a.xact_start > make_interval(secs => %(long_xact)s)
                           OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
                               AND clock_timestamp() - a.state_change > make_interval(secs => %(idle_xact)s)))
                    ORDER BY a.xact_start
                    LIMIT 50) l), '[]') AS long_sessions
