-- rehearse_wal: the copy's current WAL insert position as bytes from 0/0 (the WAL a migration writes is the
-- difference).
SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), '0/0')::bigint AS n
