-- table_set_role: act as {role} until the end of the transaction (the table owner: what its CHECKs and index
-- expressions do while rows are written, they do with the owner's rights, never opsd's).
SET LOCAL ROLE {role}
