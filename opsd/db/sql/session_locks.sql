-- session_locks: the locks of a set of backends. Relations of another database show as their OID.
SELECT l.pid,
       l.locktype,
       l.mode,
       l.granted,
       CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END AS relation,
       extract(epoch FROM clock_timestamp() - l.waitstart)::float8 AS wait_age
FROM pg_locks l
WHERE l.pid = ANY(%(pids)s)
  AND l.locktype IN ('relation', 'tuple', 'transactionid', 'virtualxid', 'object', 'advisory', 'page', 'extend')
