-- rehearse_owner: the owner of the current database (a rehearsal's default migration role).
SELECT pg_catalog.pg_get_userbyid(d.datdba)::text AS name
FROM pg_catalog.pg_database d
WHERE d.datname = pg_catalog.current_database()
