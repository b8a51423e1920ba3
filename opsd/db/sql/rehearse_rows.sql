-- rehearse_rows: one table's rows as the md5 of each row's text, sorted byte-wise, streamed with COPY (the
-- rollback's check compares two such streams). {table}: the table as regclass prints it (quoted by the server).
COPY (SELECT pg_catalog.md5(t::text) FROM ONLY {table} t ORDER BY pg_catalog.md5(t::text) COLLATE "C") TO STDOUT
