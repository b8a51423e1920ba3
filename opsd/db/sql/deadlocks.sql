-- deadlocks: deadlocks detected since the statistics were reset, over all databases.
SELECT coalesce(sum(deadlocks), 0)::bigint AS deadlocks
FROM pg_stat_database
