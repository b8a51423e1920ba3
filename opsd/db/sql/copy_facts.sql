-- copy_facts: what a quarantined copy still has that reaches outside it, in the database connected to
-- (subscriptions that are enabled or hold a slot, replication slots, user mappings); all zero once detached.
SELECT (SELECT count(*) FROM pg_catalog.pg_subscription s
        WHERE s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d
                           WHERE d.datname = pg_catalog.current_database())
          AND (s.subenabled OR s.subslotname IS NOT NULL))::int AS subscriptions,
       (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int AS slots,
       (SELECT count(*) FROM pg_catalog.pg_user_mapping)::int AS user_mappings
