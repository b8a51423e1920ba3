-- table_put_back: what a DBA would run to put back the rows of {source} missing from the live table {live}
-- (printed, never run by opsd): {overriding} is OVERRIDING SYSTEM VALUE when a GENERATED ALWAYS identity
-- column is given its old value; stored generated columns are left out of {cols}.
INSERT INTO {live} ({cols}) {overriding}
SELECT {rcols} FROM {source} r
WHERE NOT EXISTS (SELECT 1 FROM {live} l WHERE ROW({lkey}) = ROW({rkey}))
