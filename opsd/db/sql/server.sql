-- server: identity and role of the server we are connected to.
SELECT current_setting('server_version_num')::int AS version_num,
       pg_is_in_recovery()                        AS in_recovery,
       (pg_control_system()).system_identifier    AS system_identifier,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_superuser,
       now()                                      AS now
