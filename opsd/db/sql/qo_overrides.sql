-- qo_overrides: the per-database and per-role settings (ALTER DATABASE/ROLE ... SET, pg_db_role_setting) that
-- can lower what the duration log times or what pg_stat_statements counts for some statements only
-- (core/queries/counting.py). Readable by any role. A database or role column NULL: every one.
SELECT d.datname::text AS datname, r.rolname::text AS rolname, s.setconfig AS setconfig
FROM pg_db_role_setting s
LEFT JOIN pg_database d ON d.oid = s.setdatabase
LEFT JOIN pg_roles r ON r.oid = s.setrole
ORDER BY 1 NULLS FIRST, 2 NULLS FIRST
