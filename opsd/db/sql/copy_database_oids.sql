-- copy_database_oids: every database of a copy and its OID (a partial copy's server log names relations by the
-- OID of their database: base/<oid>/..., pg_tblspc/<tablespace>/<version>/<oid>/...).
SELECT d.datname::text AS name, d.oid::bigint AS oid
FROM pg_catalog.pg_database d
ORDER BY d.datname
