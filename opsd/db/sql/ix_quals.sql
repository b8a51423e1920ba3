-- ix_quals: the filters pg_qualstats sampled in this database that no index served (eval_type 'f': applied to rows
-- a scan had already read), one row per statement (queryid and role), table (a partition's partition root) and
-- column, with the btree strategy of its operator for the column's type (3: equality, 1, 2, 4, 5: a range; none:
-- no btree index can serve it, e.g. LIKE with a leading wildcard), how often it ran and the rows it filtered out.
-- Join quals (a column against another table's) are left out. constvalue (a literal: customer data) is never read.
-- {qualstats}: the extension's schema in this database.
SELECT q.queryid,
       pg_catalog.pg_get_userbyid(q.userid)::text AS rolname,
       rn.nspname::text AS schema,
       r.relname::text AS table_name,
       pg_catalog.format('%%I.%%I', rn.nspname, r.relname) AS table_ref,
       pg_catalog.quote_ident(rn.nspname) AS schema_ref,
       a.attname::text AS column_name,
       pg_catalog.quote_ident(a.attname) AS column_ref,
       (SELECT MIN(ao.amopstrategy)::int
        FROM pg_catalog.pg_opclass oc
        JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod AND am.amname = 'btree'
        JOIN pg_catalog.pg_amop ao ON ao.amopfamily = oc.opcfamily
        WHERE oc.opcdefault AND oc.opcintype = a.atttypid AND ao.amopopr = q.opno) AS strategy,
       SUM(q.execution_count)::bigint AS executions,
       SUM(q.nbfiltered)::bigint AS filtered
FROM {qualstats}.pg_qualstats() q
JOIN pg_catalog.pg_database d ON d.oid = q.dbid AND d.datname = pg_catalog.current_database()
JOIN pg_catalog.pg_class c ON c.oid = COALESCE(q.lrelid, q.rrelid)
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = COALESCE(q.lattnum, q.rattnum)
JOIN pg_catalog.pg_class r ON r.oid = COALESCE(pg_catalog.pg_partition_root(c.oid), c.oid)
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE q.eval_type = 'f' AND (q.lrelid IS NULL) <> (q.rrelid IS NULL) AND q.queryid IS NOT NULL
GROUP BY q.queryid, q.userid, q.opno, rn.nspname, r.relname, a.attname, a.atttypid
ORDER BY rn.nspname, r.relname, q.queryid, a.attname
