-- ix_hypo_params: how many parameters a statement opsd prepared takes (EXPLAIN EXECUTE passes as many NULLs).
SELECT pg_catalog.cardinality(parameter_types) AS params
FROM pg_catalog.pg_prepared_statements
WHERE name = %(name)s
