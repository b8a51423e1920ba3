-- amcheck_btree: bt_index_check with heapallindexed (raises an error naming the index when it is corrupt).
-- {amcheck}: the extension's schema. amcheck runs index expressions as the table's owner, in a
-- security-restricted operation (PostgreSQL 15), never with the rights of the role that calls it.
SELECT {amcheck}.bt_index_check(index => %(rel)s::pg_catalog.regclass, heapallindexed => true) IS NULL AS checked
