-- activity: one scan of pg_stat_activity per health sample, for every part that reads it: client sessions
-- grouped by state, database, user and application (with the server's limits); the sessions waiting on a
-- heavyweight lock and who blocks them (pg_blocking_pids() only for those); the details of every session in
-- those blocking trees; the sessions with a long transaction or idle in one (at most 50, oldest first).
WITH a AS MATERIALIZED (
    SELECT pid, backend_type, xact_start, state_change, wait_event_type,
           coalesce(state, '') AS state,
           coalesce(datname::text, '') AS datname,
           coalesce(usename::text, '') AS usename,
           coalesce(application_name, '') AS application_name,
           coalesce(host(client_addr), 'local') AS client,
           coalesce(wait_event, '') AS wait_event,
           extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_age,
           extract(epoch FROM clock_timestamp() - state_change)::float8 AS state_age,
           coalesce(query, '') AS query
    FROM pg_stat_activity
),
w AS MATERIALIZED (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM a
    WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()
),
session AS (
    SELECT pid, state, usename, datname, application_name, client, coalesce(wait_event_type, '') AS wait_event_type,
           wait_event, xact_age, state_age, query
    FROM a
)
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved,
       coalesce((SELECT json_agg(g ORDER BY g.sessions DESC)
                 FROM (SELECT CASE WHEN state = '' THEN 'unknown' ELSE state END AS state, datname, usename,
                              application_name, count(*)::int AS sessions
                       FROM a WHERE backend_type = 'client backend'
                       GROUP BY 1, 2, 3, 4) g), '[]') AS groups,
       coalesce((SELECT json_agg(w) FROM w), '[]') AS waiters,
       coalesce((SELECT json_agg(s) FROM session s
                 WHERE s.pid IN (SELECT pid FROM w UNION SELECT unnest(blocked_by) FROM w)), '[]') AS tree_sessions,
       coalesce((SELECT json_agg(l) FROM (
                    SELECT s.* FROM session s JOIN a USING (pid)
                    WHERE a.backend_type = 'client backend'
                      AND a.pid <> pg_backend_pid()
                      AND a.xact_start IS NOT NULL
                      AND (clock_timestamp() - a.xact_start > make_interval(secs => %(long_xact)s)
                           OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
                               AND clock_timestamp() - a.state_change > make_interval(secs => %(idle_xact)s)))
                    ORDER BY a.xact_start
                    LIMIT 50) l), '[]') AS long_sessions
