-- heartbeat_setup: opsd's marker table (idempotent). Its own schema, no grants to PUBLIC, a few rows a minute.
-- Every recovery drill compares the rows at or before its target time with the restored copy.
CREATE SCHEMA IF NOT EXISTS opsd;
REVOKE ALL ON SCHEMA opsd FROM PUBLIC;
CREATE TABLE IF NOT EXISTS opsd.heartbeat (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    txid       bigint NOT NULL DEFAULT txid_current(),
    lsn        pg_lsn NOT NULL DEFAULT pg_current_wal_lsn()
);
CREATE INDEX IF NOT EXISTS heartbeat_written_at ON opsd.heartbeat (written_at);
COMMENT ON TABLE opsd.heartbeat IS 'written by opsd every drill.heartbeat_interval; ground truth for recovery drills';
