-- table_load_header: what goes before the dump of the recovered tables when it is loaded (opsd's load in one
-- psql transaction, and the --into-file dump): names resolve in pg_catalog only, the new schema is made for
-- {owner}, and everything after runs as {role} (the tables' owner, or NONE: the loading role).
SET search_path = pg_catalog, pg_temp;
SET row_security = off;
CREATE SCHEMA {schema} AUTHORIZATION {owner};
SET ROLE {role};
