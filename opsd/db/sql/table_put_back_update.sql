-- table_put_back_update: what a DBA would run to set the rows a known bad transaction changed back to their
-- values before it ({source}: its victims), by primary key (printed, never run by opsd); {cols}: the columns
-- that may be set (no key, identity or generated column).
UPDATE {live} AS l SET ({cols}) = ROW({rcols})
FROM {source} r
WHERE ROW({lkey}) = ROW({rkey}) AND ROW({lcols}) IS DISTINCT FROM ROW({rcols})
