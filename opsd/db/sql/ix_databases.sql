-- ix_databases: the databases whose indexes opsd indexes reads: every one a client can connect to, templates aside.
SELECT datname::text AS name
FROM pg_catalog.pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY datname
