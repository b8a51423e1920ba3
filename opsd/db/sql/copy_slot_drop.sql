-- copy_slot_drop: drop one replication slot copied from production (on the copy only).
SELECT pg_catalog.pg_drop_replication_slot(%(name)s)
