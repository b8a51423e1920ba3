-- ix_indexes: every index on this database's tables (system schemas and temporary tables aside) with what
-- opsd indexes judges it by (core/queries/indexes.py): the names raw and as SQL (quoted by the server: a statement opsd
-- suggests quotes them right), the method, each key column's definition (pg_get_indexdef per column: a column's
-- name or an expression's text), operator class, collation and options (DESC, NULLS FIRST), INCLUDE columns,
-- the predicate, unique/primary/exclusion/replica identity, the constraints that use it (pg_constraint.conindid: its own, and
-- foreign keys that reference it), the foreign keys of its own table whose columns are its leading key columns
-- (in any order: a DELETE or UPDATE of a referenced row finds the referencing rows by it), valid/ready (a failed CREATE INDEX CONCURRENTLY leaves it invalid; one being
-- built now is "building"), whether it is a partition of a partitioned index (and the root one's name), the
-- table's partition root, and its size from pg_class.relpages (no lock taken; a partitioned index: the sum of
-- its partitions').
SELECT c.oid::bigint AS oid,
       n.nspname::text AS schema,
       t.relname::text AS table_name,
       c.relname::text AS name,
       pg_catalog.format('%%I.%%I', n.nspname, t.relname) AS table_ref,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS index_ref,
       t.relkind::text AS table_kind,
       c.relkind::text AS kind,
       am.amname::text AS method,
       pg_catalog.pg_get_indexdef(c.oid) AS definition,
       ARRAY(SELECT pg_catalog.pg_get_indexdef(c.oid, k, true)
             FROM pg_catalog.generate_series(1, i.indnkeyatts::int) k ORDER BY k) AS keys,
       ARRAY(SELECT pg_catalog.pg_get_indexdef(c.oid, k, true)
             FROM pg_catalog.generate_series(i.indnkeyatts::int + 1, i.indnatts::int) k ORDER BY k) AS included,
       ARRAY(SELECT x::bigint FROM pg_catalog.unnest(i.indclass::oid[]) WITH ORDINALITY u(x, k)
             WHERE k <= i.indnkeyatts ORDER BY k) AS opclasses,
       ARRAY(SELECT x::bigint FROM pg_catalog.unnest(i.indcollation::oid[]) WITH ORDINALITY u(x, k)
             WHERE k <= i.indnkeyatts ORDER BY k) AS collations,
       ARRAY(SELECT x::int FROM pg_catalog.unnest(i.indoption::int2[]) WITH ORDINALITY u(x, k)
             WHERE k <= i.indnkeyatts ORDER BY k) AS options,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary,
       i.indisexclusion AS is_exclusion,
       i.indisreplident AS replica_identity,
       ARRAY(SELECT pg_catalog.format('%%s (%%s)', co.conname, co.contype)
             FROM pg_catalog.pg_constraint co WHERE co.conindid = c.oid ORDER BY co.conname) AS constraints,
       ARRAY(SELECT fk.conname::text FROM pg_catalog.pg_constraint fk
             WHERE fk.conrelid = i.indrelid AND fk.contype = 'f'
               AND pg_catalog.cardinality(fk.conkey) <= i.indnkeyatts
               AND ARRAY(SELECT k FROM pg_catalog.unnest(fk.conkey) k ORDER BY k)
                 = ARRAY(SELECT k FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY u(k, o)
                         WHERE o <= pg_catalog.cardinality(fk.conkey) ORDER BY k)
             ORDER BY fk.conname) AS foreign_keys,
       i.indisvalid AS valid,
       i.indisready AS ready,
       EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index p WHERE p.index_relid = c.oid) AS building,
       c.relispartition AS attached,
       (SELECT pr.relname::text FROM pg_catalog.pg_class pr
        WHERE c.relispartition AND pr.oid = pg_catalog.pg_partition_root(c.oid)) AS parent,
       rn.nspname::text AS root_schema,
       r.relname::text AS root_table,
       CASE WHEN c.relkind = 'I'
            THEN (SELECT COALESCE(SUM(pc.relpages), 0)::bigint FROM pg_catalog.pg_partition_tree(c.oid) pt
                  JOIN pg_catalog.pg_class pc ON pc.oid = pt.relid)
            ELSE c.relpages::bigint END
         * pg_catalog.current_setting('block_size')::bigint AS size_bytes
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = c.relam
JOIN pg_catalog.pg_class r ON r.oid = COALESCE(pg_catalog.pg_partition_root(t.oid), t.oid)
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname !~ '^pg_(toast_)?temp_'
  AND t.relkind IN ('r', 'p', 'm')
ORDER BY n.nspname, t.relname, c.relname
