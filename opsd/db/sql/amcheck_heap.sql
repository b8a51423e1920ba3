-- amcheck_heap: corruption reported by verify_heapam for one relation (no rows: sound), TOAST included.
SELECT blkno, offnum, msg
FROM verify_heapam(%(rel)s::regclass, check_toast => true)
LIMIT 5
