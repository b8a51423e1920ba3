-- rehearse_sessions: sessions of one role that started at or after a time (on the copy: the migration's; on
-- production: a migration that reached production instead of its copy).
SELECT count(*)::bigint AS n
FROM pg_catalog.pg_stat_activity
WHERE usename = %(role)s
  AND backend_start >= %(since)s
