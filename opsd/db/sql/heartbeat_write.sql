-- heartbeat_write: one marker row (autocommit: it is committed when this returns).
INSERT INTO opsd.heartbeat DEFAULT VALUES
RETURNING id, written_at, txid, lsn::text AS lsn
