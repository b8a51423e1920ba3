-- heartbeat_prune: drop marker rows older than the retention.
DELETE FROM opsd.heartbeat WHERE written_at < clock_timestamp() - %(keep)s::interval
