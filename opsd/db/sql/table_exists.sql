-- table_exists: whether SCHEMA.TABLE (quoted identifiers, as regclass input) names a table here.
SELECT to_regclass(%(name)s) IS NOT NULL AS found
