-- ix_role_search_path: the search_path a role's sessions in this database start with: ALTER ROLE ... IN DATABASE,
-- else ALTER ROLE, else ALTER DATABASE, else PostgreSQL's default ("$user", public: postgresql.conf's value
-- is not readable here). ``member``: whether the advice connection's login role may SET ROLE to it.
WITH s AS (
    SELECT st.setrole, st.setdatabase, pg_catalog.substr(c, 13) AS value
    FROM pg_catalog.pg_db_role_setting st, pg_catalog.unnest(st.setconfig) c
    WHERE c LIKE 'search\_path=%%'
)
SELECT COALESCE(
         (SELECT value FROM s WHERE s.setrole = r.oid AND s.setdatabase = d.oid),
         (SELECT value FROM s WHERE s.setrole = r.oid AND s.setdatabase = 0),
         (SELECT value FROM s WHERE s.setrole = 0 AND s.setdatabase = d.oid),
         (SELECT boot_val FROM pg_catalog.pg_settings WHERE name = 'search_path')) AS search_path,
       pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') AS member
FROM pg_catalog.pg_roles r, pg_catalog.pg_database d
WHERE r.rolname = %(role)s AND d.datname = pg_catalog.current_database()
