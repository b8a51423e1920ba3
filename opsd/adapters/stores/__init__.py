"""The SQLite stores: one file (``<state_dir>/history.sqlite3``), one module per table family (runs, health,
alerts), one schema version (``PRAGMA user_version``) migrated forward by :mod:`.database`."""
