-- query_setup_settings: the settings query statistics need (docs/queries.md, "Setup") as the server runs them now,
-- and whether a change to them waits for a restart. pg_settings only: readable by any role (the queries check
-- runs under opsd's least-privilege role).
SELECT s.name, s.setting, s.pending_restart
FROM pg_settings s
WHERE s.name = ANY(%(names)s)
ORDER BY s.name
