-- amcheck_install: the extension, in the scratch copy only (a drill never runs this on production), in a schema
-- of its own unless the database has it already (wherever it is: amcheck_schema says where). The restored
-- database's event triggers do not fire for opsd's DDL (session_replication_role = replica: those enabled
-- ALWAYS aside), so code planted in the copy does not run in opsd's superuser session, and a shop's trigger that
-- forbids CREATE EXTENSION does not leave the database unchecked.
SET session_replication_role = replica;
CREATE SCHEMA IF NOT EXISTS opsd_amcheck;
CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA opsd_amcheck;
RESET session_replication_role;
