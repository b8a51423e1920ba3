-- qs_relations: one database's table and index counters in one statement, lock-free: pg_stat_user_tables and
-- pg_stat_user_indexes (cumulative statistics, no relation lock), sizes from pg_class.relpages times the block
-- size (as of the last VACUUM, ANALYZE or CREATE INDEX; pg_relation_size would lock the relation). A table's
-- size is its heap and TOAST; an index row names its table. ``oid``: the table's or index's own (an entry is
-- told by it: a renamed table goes on, one dropped and created again is another). ``other``: counters not kept as deltas that only
-- ever grow (index tuples fetched, HOT updates, vacuums and analyzes), so an entry reset by
-- pg_stat_reset_single_table_counters is told from one that only moved. The database's committed and rolled
-- back transactions and its stats_reset are on every row (pg_stat_reset() moves both); one row with NULL kind
-- when the database has no table.
WITH db AS (
    SELECT (xact_commit + xact_rollback)::bigint AS xacts, stats_reset AS db_reset
    FROM pg_catalog.pg_stat_database
    WHERE datname = pg_catalog.current_database()
),
bs AS (
    SELECT pg_catalog.current_setting('block_size')::bigint AS block
),
rel AS (
    SELECT 'table'::text AS kind, t.relid::bigint AS oid, t.schemaname::text AS schemaname, t.relname::text AS relname,
           ''::text AS indexname, t.seq_scan::bigint AS seq_scan, t.seq_tup_read::bigint AS seq_tup_read,
           COALESCE(t.idx_scan, 0)::bigint AS idx_scan, t.n_tup_ins::bigint AS n_tup_ins,
           t.n_tup_upd::bigint AS n_tup_upd, t.n_tup_del::bigint AS n_tup_del,
           (GREATEST(c.relpages, 0) + COALESCE(GREATEST(tc.relpages, 0), 0))::bigint * bs.block AS size_bytes,
           (COALESCE(t.idx_tup_fetch, 0) + t.n_tup_hot_upd + t.vacuum_count + t.autovacuum_count
            + t.analyze_count + t.autoanalyze_count)::bigint AS other
    FROM pg_catalog.pg_stat_user_tables t
    JOIN pg_catalog.pg_class c ON c.oid = t.relid
    LEFT JOIN pg_catalog.pg_class tc ON tc.oid = c.reltoastrelid
    CROSS JOIN bs
    UNION ALL
    SELECT 'index', i.indexrelid::bigint, i.schemaname::text, i.relname::text, i.indexrelname::text, 0, 0, i.idx_scan::bigint, 0, 0, 0,
           GREATEST(c.relpages, 0)::bigint * bs.block, i.idx_tup_read::bigint
    FROM pg_catalog.pg_stat_user_indexes i
    JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
    CROSS JOIN bs
)
SELECT db.xacts, db.db_reset, rel.*
FROM db LEFT JOIN rel ON true
