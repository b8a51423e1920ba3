"""The state file's schema, as the list of steps that build it. Step N brings ``PRAGMA user_version`` from N-1
to N; a step is never edited once released, a change is a new step. Step 1 is the schema opsd wrote before
versioning (every statement ``IF NOT EXISTS``), so a file from then is adopted as it is."""

from __future__ import annotations

V1_RUNS = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT NOT NULL DEFAULT 'running',
    error       TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_job_started ON runs (job, started_at);
"""

V1_HEALTH = """
CREATE TABLE IF NOT EXISTS health_samples (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    taken_at TEXT NOT NULL,
    data     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS health_samples_taken ON health_samples (taken_at);
CREATE TABLE IF NOT EXISTS incidents (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    key       TEXT NOT NULL,
    kind      TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    closed_at TEXT,
    summary   TEXT NOT NULL,
    peak      REAL NOT NULL,
    worst     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (closed_at, key);
"""

V1_ALERTS = """
CREATE TABLE IF NOT EXISTS alerts (
    key        TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    severity   TEXT NOT NULL,
    summary    TEXT NOT NULL,
    first_at   TEXT NOT NULL,
    last_sent  TEXT,
    resolved_at TEXT
);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    key     TEXT NOT NULL,
    kind    TEXT NOT NULL,
    ok      INTEGER NOT NULL,
    error   TEXT
);
"""

# Step 2: the kind and version of each saved record (job details, health samples, incident moments) are kept
# beside it, so a reader knows which shape it is reading; rows written before have no kind and version 0 (the
# unversioned shapes, which opsd/core/records still reads). The monthly report's incident query gets its index.
V2_RECORD_VERSIONS = """
ALTER TABLE runs ADD COLUMN details_kind TEXT;
ALTER TABLE runs ADD COLUMN details_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE health_samples ADD COLUMN data_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN worst_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at);
"""

# Step 3: the copies of production this host runs (drills, side copies): one row each while it lives, so a copy
# whose job died is found by what opsd wrote, not guessed from directory names.
V3_COPIES = """
CREATE TABLE IF NOT EXISTS copies (
    id      TEXT PRIMARY KEY,
    data    TEXT NOT NULL,
    version INTEGER NOT NULL
);
"""

# Step 4: alert messages not delivered yet, one per alert key and channel (a newer message for the same key
# replaces the one waiting), retried with backoff by later runs until delivered or expired. The error is
# stored as logged: the URL shown as scheme://host:port, secrets masked.
V4_ALERT_PENDING = """
CREATE TABLE IF NOT EXISTS alert_pending (
    key        TEXT NOT NULL,
    channel    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    first_at   TEXT NOT NULL,
    next_at    TEXT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (key, channel)
);
CREATE INDEX IF NOT EXISTS alert_pending_next ON alert_pending (next_at);
"""

# Step 5: a year of history costs nothing. Runs get an index on their start alone (the monthly report's range).
# Each health sample keeps beside its JSON the figures thinning compares (larger is worse; NULL in rows written
# before: thinning keeps the first sample of their buckets) and the resolution it stands for (``step``, seconds:
# 0 for every sample, 900 for the worst of a 15-minute bucket, ...), so ``[health] keep`` thins and prunes by
# index, in batches, without reading a sample's JSON.
V5_HISTORY_AT_SCALE = """
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
ALTER TABLE health_samples ADD COLUMN step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE health_samples ADD COLUMN lock_wait REAL;
ALTER TABLE health_samples ADD COLUMN conn_share REAL;
ALTER TABLE health_samples ADD COLUMN pool_maxwait REAL;
ALTER TABLE health_samples ADD COLUMN pool_waiting REAL;
ALTER TABLE health_samples ADD COLUMN replay_lag REAL;
ALTER TABLE health_samples ADD COLUMN problems INTEGER;
CREATE INDEX IF NOT EXISTS health_samples_step ON health_samples (step, taken_at);
"""

# Step 6: service levels (issue 36, docs/queries.md). Snapshots of pg_stat_statements and of the table and index
# statistics, one row a snapshot of one node (``since``: the node's previous snapshot, the window this one's deltas
# cover), kept as deltas: only statements and relations whose counters moved. ``query_last`` holds the raw
# counters the next delta is taken from. ``query_over``: executions over each objective's threshold, counted from
# the duration log and matched by queryid, per snapshot. ``relation_seen``: when each table and index was first
# and last seen on each node (an index never scanned has no delta row, but was there). ``relation_sizes``: a
# table's size once a day (storage growth). ``log_positions``: how far the duration log was read.
# ``availability``: up and down spans from the health probe; time between spans is unknown, never up.
V6_SERVICE_LEVELS = """
CREATE TABLE IF NOT EXISTS query_snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    node       TEXT NOT NULL,
    taken_at   TEXT NOT NULL,
    since      TEXT,
    statements INTEGER NOT NULL,
    reset      INTEGER NOT NULL DEFAULT 0,
    dealloc    INTEGER NOT NULL DEFAULT 0,
    log_state  TEXT NOT NULL DEFAULT 'none',
    problems   TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS query_snapshots_at ON query_snapshots (taken_at);
CREATE INDEX IF NOT EXISTS query_snapshots_node ON query_snapshots (node, taken_at);
CREATE TABLE IF NOT EXISTS query_stats (
    snapshot_id  INTEGER NOT NULL,
    queryid      INTEGER NOT NULL,
    dbname       TEXT NOT NULL,
    rolname      TEXT NOT NULL,
    calls        INTEGER NOT NULL,
    total_ms     REAL NOT NULL,
    rows         INTEGER NOT NULL,
    shared_hit   INTEGER NOT NULL,
    shared_read  INTEGER NOT NULL,
    temp_read    INTEGER NOT NULL,
    temp_written INTEGER NOT NULL,
    wal_bytes    INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, queryid, dbname, rolname)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS query_texts (
    queryid   INTEGER NOT NULL,
    dbname    TEXT NOT NULL,
    rolname   TEXT NOT NULL,
    text      TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (queryid, dbname, rolname)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS query_over (
    snapshot_id INTEGER NOT NULL,
    objective   TEXT NOT NULL,
    queryid     INTEGER NOT NULL,
    dbname      TEXT NOT NULL,
    rolname     TEXT NOT NULL,
    over        INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, objective, queryid, dbname, rolname)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS query_last (
    node     TEXT NOT NULL,
    key      TEXT NOT NULL,
    counters TEXT NOT NULL,
    PRIMARY KEY (node, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS relation_stats (
    snapshot_id  INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    dbname       TEXT NOT NULL,
    schemaname   TEXT NOT NULL,
    relname      TEXT NOT NULL,
    indexname    TEXT NOT NULL,
    seq_scan     INTEGER NOT NULL,
    seq_tup_read INTEGER NOT NULL,
    idx_scan     INTEGER NOT NULL,
    n_tup_ins    INTEGER NOT NULL,
    n_tup_upd    INTEGER NOT NULL,
    n_tup_del    INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, kind, dbname, schemaname, relname, indexname)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS relation_seen (
    node       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    dbname     TEXT NOT NULL,
    schemaname TEXT NOT NULL,
    relname    TEXT NOT NULL,
    indexname  TEXT NOT NULL,
    first_at   TEXT NOT NULL,
    last_at    TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    PRIMARY KEY (node, kind, dbname, schemaname, relname, indexname)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS relation_sizes (
    day        TEXT NOT NULL,
    dbname     TEXT NOT NULL,
    schemaname TEXT NOT NULL,
    relname    TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    PRIMARY KEY (day, dbname, schemaname, relname)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_positions (
    node   TEXT PRIMARY KEY,
    file   TEXT NOT NULL,
    inode  INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS availability (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    state    TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at   TEXT NOT NULL,
    what     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS availability_end ON availability (end_at);
"""

# Which objective definitions a snapshot's duration log was counted under (docs/queries.md, "Exactness"):
# ``definition`` is the objective's threshold and selector as counted (core/queries/objectives.Target.definition);
# ``problem`` not empty: counted, but not exactly (a per-database or per-role override, pg_stat_statements.track).
# A window lacking the current definition of an objective is unknown for it. A merged snapshot keeps a
# definition only if every part had it. log_positions gains the snapshot its position was read for (a snapshot
# whose log was never read: the next window counts its lines too), ``owed`` (why the next window is unknown: the
# read was cut short) and ``seen`` (JSON [[file, inode, offset], ...]: where each file still in the directory was
# read to, so a file name reused and appended to is read from there, not from its start).
V7_QUERY_COUNTED = """
CREATE TABLE IF NOT EXISTS query_counted (
    snapshot_id INTEGER NOT NULL,
    objective   TEXT NOT NULL,
    definition  TEXT NOT NULL,
    problem     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (snapshot_id, objective, definition)
) WITHOUT ROWID;
ALTER TABLE log_positions ADD COLUMN snapshot_id INTEGER;
ALTER TABLE log_positions ADD COLUMN owed TEXT NOT NULL DEFAULT '';
ALTER TABLE log_positions ADD COLUMN seen TEXT NOT NULL DEFAULT '[]';
"""

MIGRATIONS: tuple[str, ...] = (V1_RUNS + V1_HEALTH + V1_ALERTS, V2_RECORD_VERSIONS, V3_COPIES, V4_ALERT_PENDING,
                               V5_HISTORY_AT_SCALE, V6_SERVICE_LEVELS, V7_QUERY_COUNTED)
LATEST = len(MIGRATIONS)
