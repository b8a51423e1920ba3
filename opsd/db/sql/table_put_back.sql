-- table_put_back: what a DBA would run to put back the recovered rows missing from the live table (printed,
-- never run by opsd).
INSERT INTO {live} ({cols})
SELECT {rcols} FROM {recovered} r
WHERE NOT EXISTS (SELECT 1 FROM {live} l WHERE ({lkey}) = ({rkey}))
