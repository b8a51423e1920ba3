"""Service levels, pure: statement and relation deltas, the duration log's lines, objectives, index verdicts."""
