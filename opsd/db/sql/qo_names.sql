-- qo_names: every database and role the server has, for the objectives' selectors ([queries] objectives
-- database / role: one naming neither counts nothing). Readable by any role.
SELECT 'database' AS kind, datname::text AS name FROM pg_database
UNION ALL
SELECT 'role', rolname::text FROM pg_roles
ORDER BY 1, 2
