-- ix_advice_user: what the advice connection's login role (session_user: [queries] advice_user) could do beyond
-- an application role, checked before anything else on that connection. Planning a statement runs its IMMUTABLE
-- and STABLE functions, which may RESET ROLE back to this login role: it must be able to do no more than the
-- application. Refused: a superuser, CREATEROLE (in PostgreSQL 15 it may grant itself any non-superuser role), or
-- a member, directly or through other roles, of a superuser or CREATEROLE role or of pg_execute_server_program,
-- pg_read_server_files or pg_write_server_files (pg_has_role MEMBER: with or without INHERIT).
SELECT session_user::text AS login,
       r.rolsuper AS superuser,
       r.rolcreaterole AS createrole,
       ARRAY(SELECT d.rolname::text
             FROM pg_catalog.pg_roles d
             WHERE d.oid <> r.oid
               AND (d.rolsuper OR d.rolcreaterole
                    OR d.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))
               AND pg_catalog.pg_has_role(r.oid, d.oid, 'MEMBER')
             ORDER BY d.rolname) AS powers
FROM pg_catalog.pg_roles r
WHERE r.rolname = session_user
