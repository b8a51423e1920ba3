-- amcheck_update: bring an older amcheck in the scratch copy (one without verify_heapam, before 1.3) to the
-- version this server ships; nothing when it is current. The copy only: production is never asked to install.
-- Event triggers of the restored database stay quiet, as for amcheck_install.
SET session_replication_role = replica;
ALTER EXTENSION amcheck UPDATE;
RESET session_replication_role;
