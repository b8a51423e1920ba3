-- copy_user_mappings: the user mappings of the database connected to (postgres_fdw, dblink servers): each
-- names a server with production's addresses and credentials. umuser 0 is PUBLIC.
SELECT s.srvname::text AS server, CASE WHEN m.umuser = 0 THEN NULL ELSE r.rolname::text END AS role
FROM pg_catalog.pg_user_mapping m
JOIN pg_catalog.pg_foreign_server s ON s.oid = m.umserver
LEFT JOIN pg_catalog.pg_roles r ON r.oid = m.umuser
ORDER BY 1, 2
