-- ix_hypo_begin: the first statement of the transaction in which opsd proves a missing index (always rolled
-- back): read-only, generic plans (the normalised statement's parameters are unknown: EXPLAIN EXECUTE with NULLs
-- plans for any value, as PostgreSQL 16's EXPLAIN (GENERIC_PLAN) would), no partition pruning (NULLs would prune
-- every partition away).
SELECT pg_catalog.set_config('transaction_read_only', 'on', true) AS read_only,
       pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true) AS plan_cache_mode,
       pg_catalog.set_config('enable_partition_pruning', 'off', true) AS pruning
