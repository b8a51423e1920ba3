-- table_sizes: each SCHEMA.TABLE's total size (heap, indexes, TOAST) as the live catalog knows it; NULL for a
-- name it does not know (the table may exist only at the target time).
SELECT n.name, pg_total_relation_size(to_regclass(n.name))::bigint AS bytes
FROM unnest(%(names)s::text[]) AS n(name)
