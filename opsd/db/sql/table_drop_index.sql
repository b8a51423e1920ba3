-- table_drop_index: drop index {index} (schema-qualified) of a side copy that must carry no owner code.
DROP INDEX {index}
