-- table_compare: the recovered table against the live one by primary key ({lkey}/{rkey}): its rows, the live
-- rows, recovered rows missing from live, live rows not in the recovered table, and rows with the same key
-- whose common columns ({lcols}/{rcols}) differ.
SELECT (SELECT count(*) FROM {recovered}) AS recovered,
       (SELECT count(*) FROM {live}) AS live,
       (SELECT count(*) FROM {recovered} r WHERE NOT EXISTS (SELECT 1 FROM {live} l WHERE ({lkey}) = ({rkey})))
         AS missing_from_live,
       (SELECT count(*) FROM {live} l WHERE NOT EXISTS (SELECT 1 FROM {recovered} r WHERE ({lkey}) = ({rkey})))
         AS only_in_live,
       (SELECT count(*) FROM {recovered} r JOIN {live} l ON ({lkey}) = ({rkey})
         WHERE ROW({rcols}) IS DISTINCT FROM ROW({lcols})) AS changed
