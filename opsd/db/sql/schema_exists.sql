-- schema_exists: whether a schema of this name exists (the name as given: case and all).
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %(name)s) AS present
