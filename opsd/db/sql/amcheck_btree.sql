-- amcheck_btree: bt_index_check with heapallindexed (raises an error naming the index when it is corrupt).
SELECT bt_index_check(index => %(rel)s::regclass, heapallindexed => true) IS NULL AS checked
