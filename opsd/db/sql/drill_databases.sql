-- drill_databases: every database of the copy, and whether it accepts connections (template0 does not: its
-- relations are skipped, named, instead of silently left out).
SELECT datname::text AS name, datallowconn AS allowed
FROM pg_catalog.pg_database
ORDER BY datname
