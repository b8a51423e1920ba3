-- ix_partitions: each table that is a partition, with its direct parent and the root of its partition tree
-- (names raw and as SQL, quoted by the server): scans and writes of the partitions count for the partitioned
-- table, where an index on all of them is suggested (CREATE INDEX ON ONLY the parent, then on each partition,
-- then ATTACH).
SELECT n.nspname::text AS schema,
       c.relname::text AS table_name,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS table_ref,
       pg_catalog.quote_ident(n.nspname) AS schema_ref,
       c.relkind = 'p' AS partitioned,
       pg_catalog.format('%%I.%%I', pn.nspname, p.relname) AS parent_ref,
       rn.nspname::text AS root_schema,
       r.relname::text AS root_table
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_catalog.pg_class r ON r.oid = pg_catalog.pg_partition_root(c.oid)
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.relispartition AND c.relkind IN ('r', 'p')
ORDER BY pg_catalog.array_length(ARRAY(SELECT pg_catalog.pg_partition_ancestors(c.oid)), 1), n.nspname, c.relname
