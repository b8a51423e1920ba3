"""Reading the archived WAL for a DBA: restore points, and the transactions that changed a table."""
