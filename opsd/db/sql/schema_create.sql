-- schema_create: the new schema the recovered tables go into (fails if it exists).
CREATE SCHEMA {schema}
