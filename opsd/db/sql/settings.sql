-- settings: the current value of the named server settings, and whether a restart is pending.
SELECT name, setting, context, pending_restart
FROM pg_settings
WHERE name = ANY(%(names)s)
ORDER BY name
