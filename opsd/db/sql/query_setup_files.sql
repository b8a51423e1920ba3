-- query_setup_files: for 'opsd setup --query-stats' (a superuser): each named setting as the server runs it, and
-- the value the configuration files hold last (pg_file_settings), applied or not: a changed
-- shared_preload_libraries is 'setting could not be applied' until the restart, and is what a second run must
-- build on (else pg_stat_statements would be appended twice). data_directory and log_directory are only shown to
-- a superuser or pg_read_all_settings.
SELECT s.name, s.setting, s.pending_restart,
       (SELECT f.setting FROM pg_file_settings f
         WHERE f.name = s.name
         ORDER BY f.seqno DESC LIMIT 1) AS file_value
FROM pg_settings s
WHERE s.name = ANY(%(names)s)
ORDER BY s.name
