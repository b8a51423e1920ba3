-- ix_hypo_reset: forget every hypothetical index of this backend (they outlive a rollback).
SELECT {hypopg}.hypopg_reset() IS NULL AS reset
