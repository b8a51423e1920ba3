-- sessions: what a set of backends is doing (the members of blocking trees), with ages measured by the server.
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
WHERE a.pid = ANY(%(pids)s)
