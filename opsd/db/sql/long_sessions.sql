-- long_sessions: client sessions whose transaction is older than long_xact seconds, or that have been idle in
-- a transaction for more than idle_xact seconds.
SELECT a.pid,
       coalesce(a.state, '') AS state,
       coalesce(a.usename::text, '') AS usename,
       coalesce(a.datname::text, '') AS datname,
       coalesce(a.application_name, '') AS application_name,
       coalesce(host(a.client_addr), 'local') AS client,
       coalesce(a.wait_event_type, '') AS wait_event_type,
       coalesce(a.wait_event, '') AS wait_event,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_age,
       extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_age,
       coalesce(a.query, '') AS query
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND a.xact_start IS NOT NULL
  AND (clock_timestamp() - a.xact_start > make_interval(secs => %(long_xact)s)
       OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
           AND clock_timestamp() - a.state_change > make_interval(secs => %(idle_xact)s)))
ORDER BY a.xact_start
LIMIT 50
