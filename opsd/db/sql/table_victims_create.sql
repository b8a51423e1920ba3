-- table_victims_create: an empty table {target} with the columns of {source} (no constraints, no indexes,
-- nothing that runs on insert): the rows a known bad transaction deleted or changed go there.
CREATE TABLE {target} AS SELECT * FROM {source} WITH NO DATA
