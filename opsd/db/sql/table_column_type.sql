-- table_column_type: store {column} of {table} as {type} (a domain column as its base type: reading a value of
-- the domain in runs the domain's CHECK constraints). The table is empty: nothing is rewritten.
ALTER TABLE {table} ALTER COLUMN {column} TYPE {type}
