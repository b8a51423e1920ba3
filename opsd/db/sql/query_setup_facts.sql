-- query_setup_facts: who opsd is here and what it may see: pg_stat_statements created in this database,
-- pg_read_all_stats (a superuser has it: pg_has_role says so; without it other roles' statement texts are
-- '<insufficient privilege>'), and whether this server is a standby (the extension comes from the primary).
SELECT current_user::text AS role,
       current_database()::text AS database,
       pg_is_in_recovery() AS in_recovery,
       EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_stat_statements') AS extension,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats
