"""Service levels: snapshots of the statistics, the duration log, objectives, indexes, availability."""
