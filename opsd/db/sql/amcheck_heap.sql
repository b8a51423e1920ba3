-- amcheck_heap: corruption reported by verify_heapam for one relation (no rows: sound), TOAST included.
-- {amcheck}: the extension's schema.
SELECT blkno, offnum, msg
FROM {amcheck}.verify_heapam(%(rel)s::pg_catalog.regclass, check_toast => true)
LIMIT 5
