-- copy_subscriptions: the logical replication subscriptions of the database connected to (on a copy of
-- production, before any SQL that is not opsd's own runs), with whether each still holds a slot on its publisher.
SELECT s.subname AS name, s.subenabled AS enabled, s.subslotname IS NOT NULL AS has_slot
FROM pg_catalog.pg_subscription s
WHERE s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
ORDER BY s.subname
