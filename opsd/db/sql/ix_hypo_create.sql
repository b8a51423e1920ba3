-- ix_hypo_create: a hypothetical index (hypopg: in this backend's memory only, seen by EXPLAIN, never built).
-- {hypopg}: the extension's schema.
SELECT indexrelid::bigint AS oid, indexname::text AS name
FROM {hypopg}.hypopg_create_index(%(definition)s)
