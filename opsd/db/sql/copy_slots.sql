-- copy_slots: the replication slots a copy of production brought with it (production's, not the copy's):
-- physical ones, and the logical ones of the database connected to (a logical slot is dropped from its own).
SELECT r.slot_name::text AS name, r.slot_type AS kind
FROM pg_catalog.pg_replication_slots r
WHERE NOT r.active AND (r.slot_type = 'physical' OR r.database = pg_catalog.current_database())
ORDER BY r.slot_name
