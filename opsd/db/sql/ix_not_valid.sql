-- ix_not_valid: constraints added NOT VALID and never validated (pg_constraint.convalidated false): existing rows
-- were never checked against them. With the statement that validates one (names quoted by the server).
SELECT n.nspname::text AS schema,
       t.relname::text AS table_name,
       co.conname::text AS name,
       co.contype::text AS kind,
       pg_catalog.pg_get_constraintdef(co.oid, true) AS definition,
       pg_catalog.format('ALTER TABLE %%I.%%I VALIDATE CONSTRAINT %%I', n.nspname, t.relname, co.conname) AS validate
FROM pg_catalog.pg_constraint co
JOIN pg_catalog.pg_class t ON t.oid = co.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE NOT co.convalidated
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, t.relname, co.conname
