-- table_batch_end: the key ({rkey}) of the row %(skip)s rows on in {recovered} after {after} (TRUE: from the
-- start), in key order: where one batch of the comparison ends (no row: the last batch is open-ended).
SELECT {rkey} FROM {recovered} r WHERE {after} ORDER BY {rkey} OFFSET %(skip)s LIMIT 1
