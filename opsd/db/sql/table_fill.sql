-- table_fill: every row of {source} into {target} (same columns, same order); the number of rows. Reading runs
-- no code of the table's (row security is off in the session: a policy that would hide rows is an error).
WITH moved AS (INSERT INTO {target} SELECT * FROM {source} RETURNING 1)
SELECT pg_catalog.count(*) FROM moved
