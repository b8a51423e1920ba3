-- restore_point_create: a named restore point on the primary, then a WAL switch so the segment holding it is
-- archived now (not at the next archive_timeout). The point's LSN, time, timeline and segment come back.
-- %(name)s: the point's name.
WITH p AS (SELECT pg_create_restore_point(%(name)s) AS lsn, clock_timestamp() AS at),
     s AS (SELECT pg_switch_wal() FROM p)
SELECT p.lsn::text AS lsn, p.at,
       (SELECT timeline_id FROM pg_control_checkpoint())::int AS timeline,
       pg_walfile_name(p.lsn) AS segment,
       pg_is_in_recovery() AS in_recovery
FROM p, s
