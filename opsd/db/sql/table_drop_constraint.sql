-- table_drop_constraint: drop constraint {name} of {table} (a side copy that must carry no owner code).
ALTER TABLE {table} DROP CONSTRAINT {name}
