-- table_lock_waiters: sessions of this database waiting for a lock on a relation (%(name)s: quoted
-- SCHEMA.TABLE): a migration's ACCESS EXCLUSIVE queued there holds up every session behind it.
SELECT pg_catalog.count(*)::int AS waiting
FROM pg_catalog.pg_locks k
WHERE k.locktype = 'relation' AND NOT k.granted AND k.relation = pg_catalog.to_regclass(%(name)s)
  AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
