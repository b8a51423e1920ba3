-- ix_hypo_role: act as the statement's own role for the rest of the transaction (SET LOCAL ROLE: its privileges
-- decide what it may read) with the search_path ix_role_search_path.sql found for it.
SELECT pg_catalog.set_config('role', %(role)s, true) AS role,
       pg_catalog.set_config('search_path', %(search_path)s, true) AS search_path
