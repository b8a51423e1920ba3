-- table_facts: for each SCHEMA.TABLE (quoted, as regclass input) this catalog knows: its owner, whether the
-- session's role may SET ROLE to it (a member of it, or a superuser), its persistence (p permanent, u unlogged,
-- t temporary) and its kind. No row for a name the catalog does not know.
SELECT n.name,
       pg_catalog.pg_get_userbyid(c.relowner)::text AS owner,
       pg_catalog.pg_has_role(c.relowner, 'MEMBER') AS can_become,
       c.relpersistence::text AS persistence,
       c.relkind::text AS kind
FROM pg_catalog.unnest(%(names)s::text[]) WITH ORDINALITY AS n(name, i)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
ORDER BY n.i
