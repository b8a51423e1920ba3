-- query_setup_available: whether pg_stat_statements is installed on this server (its control file in the
-- extension directory: Debian's postgresql-15 ships it, elsewhere postgresql-contrib). 'opsd setup --query-stats'
-- asks before it adds the library to shared_preload_libraries: a library that is not there stops the postmaster
-- from starting after the restart. pg_available_extensions is readable by any role.
SELECT EXISTS (SELECT 1 FROM pg_available_extensions a WHERE a.name = 'pg_stat_statements') AS available
