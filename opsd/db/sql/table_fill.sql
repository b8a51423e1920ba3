-- table_fill: every row of {source} into {target} (same columns, same order); the number of rows.
WITH moved AS (INSERT INTO {target} SELECT * FROM {source} RETURNING 1)
SELECT count(*) FROM moved
