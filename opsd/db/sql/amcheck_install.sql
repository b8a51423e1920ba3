-- amcheck_install: the extension, in the scratch copy only (a drill never runs this on production), in a schema
-- of its own unless the database has it already (wherever it is: amcheck_schema says where).
CREATE SCHEMA IF NOT EXISTS opsd_amcheck;
CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA opsd_amcheck;
