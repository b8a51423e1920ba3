-- rehearse_tables: the database's own tables with data (ordinary tables and partitions, not partitioned
-- parents), with the rows written to each since the statistics began (a migration that writes a table raises it).
SELECT c.oid::pg_catalog.regclass::text AS name,
       COALESCE(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0)::bigint AS writes
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind = 'r'
  AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
ORDER BY 1
