-- rehearse_role: what a role may do beyond its own objects, on the rehearsal's copy. A migration runs as this
-- role: a superuser, a role that may create roles (before PostgreSQL 16 it can grant itself any role), or a
-- member of the roles that reach the server's files and programs could run code with the server's rights.
SELECT r.rolname::text AS name,
       r.rolsuper AS superuser,
       r.rolcreaterole AS createrole,
       r.rolcanlogin AS login,
       ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_roles g
             WHERE g.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files')
               AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')
             ORDER BY 1) AS server_roles
FROM pg_catalog.pg_roles r
WHERE r.rolname = %(role)s
