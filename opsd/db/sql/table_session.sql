-- table_session: pin a side restore's session before any other statement: names resolve in pg_catalog first and
-- never in a schema another role can write to, and row security raises an error instead of hiding rows.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false) AS search_path,
       pg_catalog.set_config('row_security', 'off', false) AS row_security
