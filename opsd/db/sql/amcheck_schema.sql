-- amcheck_schema: the schema amcheck is installed in, in this database (its functions are called by that
-- schema's name: opsd's search_path is pg_catalog, pg_temp).
SELECT n.nspname::text AS name
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'amcheck'
