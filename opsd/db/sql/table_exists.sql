-- table_exists: whether SCHEMA.TABLE (quoted identifiers, as regclass input) names a relation here.
SELECT pg_catalog.to_regclass(%(name)s) IS NOT NULL AS found
