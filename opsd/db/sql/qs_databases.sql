-- qs_databases: the databases whose tables and indexes a snapshot reads: every one a client can connect to,
-- templates aside (read-only databases included: a snapshot only reads).
SELECT datname::text AS name
FROM pg_catalog.pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY datname
