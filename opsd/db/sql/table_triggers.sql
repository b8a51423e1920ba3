-- table_triggers: the live table's enabled user triggers that fire on INSERT or UPDATE (row or statement level),
-- by name: the put-back statement fires them. %(name)s: quoted SCHEMA.TABLE, as regclass input.
SELECT t.tgname::text AS name
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = pg_catalog.to_regclass(%(name)s) AND NOT t.tgisinternal AND t.tgenabled <> 'D'
  AND (t.tgtype::int & 20) <> 0
ORDER BY 1
