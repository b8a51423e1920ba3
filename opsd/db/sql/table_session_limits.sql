-- table_session_limits: how long any one statement of this session may wait for a lock (%(lock_timeout)s) and
-- run (%(statement_timeout)s), as PostgreSQL reads them (e.g. '2000ms').
SELECT pg_catalog.set_config('lock_timeout', %(lock_timeout)s, false) AS lock_timeout,
       pg_catalog.set_config('statement_timeout', %(statement_timeout)s, false) AS statement_timeout
