-- table_compare: one key range of the recovered table against the live one, by primary key ({lkey}/{rkey}),
-- rows in the range {rrange}/{lrange}: recovered rows, live rows, recovered rows missing from live, live rows
-- not in the recovered table, and rows with the same key whose common columns ({lcols}/{rcols}) differ. Each
-- range is one short statement: the live table's lock is held for that long only.
SELECT (SELECT pg_catalog.count(*) FROM {recovered} r WHERE {rrange}) AS recovered,
       (SELECT pg_catalog.count(*) FROM {live} l WHERE {lrange}) AS live,
       (SELECT pg_catalog.count(*) FROM {recovered} r WHERE {rrange}
          AND NOT EXISTS (SELECT 1 FROM {live} l WHERE ROW({lkey}) = ROW({rkey}))) AS missing_from_live,
       (SELECT pg_catalog.count(*) FROM {live} l WHERE {lrange}
          AND NOT EXISTS (SELECT 1 FROM {recovered} r WHERE ROW({lkey}) = ROW({rkey}))) AS only_in_live,
       (SELECT pg_catalog.count(*) FROM {recovered} r JOIN {live} l ON ROW({lkey}) = ROW({rkey})
         WHERE {rrange} AND ROW({rcols}) IS DISTINCT FROM ROW({lcols})) AS changed
