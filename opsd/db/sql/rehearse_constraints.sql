-- rehearse_constraints: the constraints of the database's own tables (foreign keys, checks, unique, primary
-- keys, exclusions) with whether each is validated. Read on a rehearsal's copy before and after the migration.
SELECT co.oid::bigint AS oid,
       co.conname::text AS name,
       co.conrelid::pg_catalog.regclass::text AS table_name,
       co.contype::text AS kind,
       co.convalidated AS validated
FROM pg_catalog.pg_constraint co
JOIN pg_catalog.pg_namespace n ON n.oid = co.connamespace
WHERE co.conrelid <> 0
  AND co.contype IN ('f', 'c', 'u', 'p', 'x')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY co.oid
