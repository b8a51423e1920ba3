-- ix_functions: the names of every function of this database outside pg_catalog (extensions', the
-- application's, information_schema's): a statement whose text calls one of them is not EXPLAINed for advice
-- (planning may run it). Names only, compared with the identifiers of the normalised text, overloads and
-- schemas aside: conservative.
SELECT DISTINCT p.proname::text AS name
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname <> 'pg_catalog'
ORDER BY 1
