-- lock_waiters: sessions waiting on a heavyweight lock, and who blocks them. pg_blocking_pids() is evaluated
-- only for the rows that pass the WHERE clause: sessions that actually wait on a lock.
SELECT a.pid,
       pg_blocking_pids(a.pid) AS blocked_by
FROM pg_stat_activity a
WHERE a.wait_event_type = 'Lock'
  AND a.pid <> pg_backend_pid()
