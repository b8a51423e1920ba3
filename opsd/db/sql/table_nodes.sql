-- table_nodes: a table's OID and the file node of each heap it has now (a partitioned table: each leaf
-- partition's), with the tablespace and database they live in; no row for a name the catalog does not know.
-- %(name)s: SCHEMA.TABLE, read as regclass input (unquoted names fold to lower case).
SELECT t.oid::bigint AS table_oid,
       d.oid::bigint AS database,
       COALESCE(NULLIF(c.reltablespace, 0), d.dattablespace)::bigint AS tablespace,
       pg_relation_filenode(c.oid)::bigint AS filenode
FROM (SELECT to_regclass(%(name)s) AS oid) t
JOIN pg_database d ON d.datname = current_database()
JOIN pg_class c ON c.oid = t.oid OR c.oid IN (SELECT p.relid FROM pg_partition_tree(t.oid) p WHERE p.isleaf)
WHERE c.relkind IN ('r', 'm') AND pg_relation_filenode(c.oid) IS NOT NULL
