-- table_schema_create: the new schema the recovered tables go into, owned by {owner} (the tables' owner, or
-- CURRENT_ROLE); fails if it exists.
CREATE SCHEMA {schema} AUTHORIZATION {owner}
