-- ix_extensions: whether pg_qualstats and hypopg are installed in this database, and in which schema (their
-- functions are called by that schema's name: opsd's search_path is pg_catalog, pg_temp).
SELECT e.extname::text AS name, n.nspname::text AS schema
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname IN ('pg_qualstats', 'hypopg')
ORDER BY e.extname
