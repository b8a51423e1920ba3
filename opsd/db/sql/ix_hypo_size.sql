-- ix_hypo_size: hypopg's estimate of a hypothetical index's size, from the table's statistics.
SELECT {hypopg}.hypopg_relation_size(%(oid)s::pg_catalog.oid)::bigint AS size_bytes
