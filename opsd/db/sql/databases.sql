-- databases: every database a client can connect to (template0 cannot).
SELECT datname AS name
FROM pg_database
WHERE datallowconn
ORDER BY datname
