-- settings: the current value of the named server settings, whether a restart is pending, and the value
-- configured in the files (pg_file_settings: a superuser, or a role granted SELECT on it and EXECUTE on
-- pg_show_all_file_settings() as docs/install.md's role is; others get a permission error, which the
-- check postgres.privileges names). The file value matters for archive_command, which pg_settings shows as
-- '(disabled)' while archive_mode is off.
SELECT s.name, s.setting, s.context, s.pending_restart,
       (SELECT f.setting FROM pg_file_settings f
         WHERE f.name = s.name AND f.error IS NULL
         ORDER BY f.seqno DESC LIMIT 1) AS file_value
FROM pg_settings s
WHERE s.name = ANY(%(names)s)
ORDER BY s.name
