-- rehearse_locks: the relation locks the migration's sessions hold right now on the copy (one role's sessions
-- in this database; relations they created and have not committed yet are not visible, and not production's
-- concern), with what the session runs. Sampled every 100 ms while the migration runs.
SELECT l.pid,
       c.oid::pg_catalog.regclass::text AS relation,
       l.mode::text AS mode,
       a.query::text AS query
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
JOIN pg_catalog.pg_class c ON c.oid = l.relation
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  AND a.usename = %(role)s
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
