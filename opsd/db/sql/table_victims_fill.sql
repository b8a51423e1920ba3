-- table_victims_fill: the rows of {source} that the bad transaction deleted or updated, as they were before it.
-- In a copy recovered to just before that transaction's commit, its row changes were replayed and then rolled
-- back at promotion: the old row versions are live again and carry its xid (or a subtransaction's) as xmax.
-- %(xids)s: the transaction and its subtransactions (32-bit xids). The number of rows.
WITH moved AS (INSERT INTO {target} SELECT * FROM {source} s
               WHERE s.xmax::text::bigint OPERATOR(pg_catalog.=) ANY (%(xids)s::bigint[]) RETURNING 1)
SELECT pg_catalog.count(*) FROM moved
