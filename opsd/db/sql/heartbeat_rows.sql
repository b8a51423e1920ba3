-- heartbeat_rows: marker rows written at or after a time (NULL table: see heartbeat_exists).
SELECT id, written_at, txid, lsn::text AS lsn
FROM opsd.heartbeat
WHERE written_at >= %(since)s
ORDER BY id
