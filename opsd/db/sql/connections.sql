-- connections: client backends grouped by state, database, user and application, with the server's limits.
SELECT coalesce(a.state, 'unknown') AS state,
       coalesce(a.datname::text, '') AS datname,
       coalesce(a.usename::text, '') AS usename,
       coalesce(a.application_name, '') AS application_name,
       count(*)::int AS sessions,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
GROUP BY 1, 2, 3, 4
ORDER BY 5 DESC
