-- privileges: what opsd's own role may do in production, for the postgres.privileges check: superuser (or a
-- member of a superuser role, which can SET ROLE to it), the predefined roles it has the privileges of, CREATE
-- on this database, EXECUTE on the functions opsd calls that are not granted to PUBLIC, ALTER SYSTEM on the
-- settings setup and an in-place restore change (PostgreSQL 15: has_parameter_privilege), and its rights on
-- opsd's marker table. Catalog joins, not to_regclass('opsd.heartbeat'): schema opsd grants no USAGE to
-- PUBLIC, and a name lookup there fails without it.
-- %(archive)s: the settings 'opsd setup' sets; %(recovery)s: those an in-place restore resets after promotion.
WITH me AS (
    SELECT r.oid, r.rolname, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user
),
hb AS (
    SELECT n.oid AS schema_oid, n.nspowner, c.oid AS table_oid, c.relowner
    FROM pg_namespace n
    LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'heartbeat' AND c.relkind = 'r'
    WHERE n.nspname = 'opsd'
)
SELECT me.rolname::text AS role,
       current_database()::text AS database,
       me.rolsuper AS superuser,
       (SELECT min(s.rolname)::text FROM pg_roles s
         WHERE s.rolsuper AND NOT me.rolsuper AND pg_has_role(me.oid, s.oid, 'MEMBER')) AS superuser_via,
       pg_has_role(me.oid, 'pg_monitor', 'USAGE') AS pg_monitor,
       pg_has_role(me.oid, 'pg_read_all_data', 'USAGE') AS pg_read_all_data,
       pg_has_role(me.oid, 'pg_write_all_data', 'USAGE') AS pg_write_all_data,
       pg_has_role(me.oid, 'pg_checkpoint', 'USAGE') AS pg_checkpoint,
       has_database_privilege(me.oid, current_database(), 'CREATE') AS create_on_database,
       has_function_privilege(me.oid, 'pg_catalog.pg_show_all_file_settings()', 'EXECUTE')
         AND has_table_privilege(me.oid, 'pg_catalog.pg_file_settings', 'SELECT') AS file_settings,
       has_function_privilege(me.oid, 'pg_catalog.pg_reload_conf()', 'EXECUTE') AS reload_conf,
       has_function_privilege(me.oid, 'pg_catalog.pg_create_restore_point(text)', 'EXECUTE') AS restore_point,
       has_function_privilege(me.oid, 'pg_catalog.pg_switch_wal()', 'EXECUTE') AS switch_wal,
       (SELECT bool_and(has_parameter_privilege(me.oid, p, 'ALTER SYSTEM'))
          FROM unnest(%(archive)s::text[]) AS p) AS alter_system_archive,
       (SELECT bool_and(has_parameter_privilege(me.oid, p, 'ALTER SYSTEM'))
          FROM unnest(%(recovery)s::text[]) AS p) AS alter_system_recovery,
       EXISTS (SELECT 1 FROM hb WHERE hb.table_oid IS NOT NULL) AS heartbeat_table,
       coalesce((SELECT has_schema_privilege(me.oid, hb.schema_oid, 'USAGE')
                        AND has_table_privilege(me.oid, hb.table_oid, 'INSERT')
                        AND has_table_privilege(me.oid, hb.table_oid, 'DELETE')
                 FROM hb WHERE hb.table_oid IS NOT NULL), false) AS heartbeat_write,
       coalesce((SELECT pg_has_role(me.oid, hb.nspowner, 'USAGE')
                        AND (hb.table_oid IS NULL OR pg_has_role(me.oid, hb.relowner, 'USAGE'))
                 FROM hb), true) AS heartbeat_owner
FROM me
