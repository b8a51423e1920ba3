"""What ``opsd indexes`` reads of the snapshots in the state file (written by the queries store): the statements
that ran in a window, each with its normalised text (never literals) and its calls there, to show the statements
behind a table's sequential scans and to EXPLAIN them with a hypothetical index."""

from __future__ import annotations

from datetime import UTC, datetime

from opsd.adapters.stores.database import StateDB, decoded
from opsd.core.queries.sqltext import HIDDEN
from opsd.core.records.indexes import StatementRef

_STATEMENTS = """
SELECT t.queryid, t.dbname, t.rolname, t.text,
       (SELECT coalesce(sum(q.calls), 0) FROM query_stats q
         JOIN query_snapshots s ON s.id = q.snapshot_id
        WHERE q.queryid = t.queryid AND q.dbname = t.dbname AND q.rolname = t.rolname
          AND s.taken_at > :lo AND s.taken_at <= :hi) AS calls
FROM query_texts t
WHERE t.text <> :hidden
"""


class IndexReads:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    @decoded
    def statements(self, since: datetime, until: datetime) -> dict[tuple[str, int, str], StatementRef]:
        """(dbname, queryid, role) -> the statement with its calls in the window, for every statement opsd has
        the text of."""
        lo, hi = since.astimezone(UTC).isoformat(), until.astimezone(UTC).isoformat()
        with self.db.connect() as c:
            rows = c.execute(_STATEMENTS, {"lo": lo, "hi": hi, "hidden": HIDDEN}).fetchall()
        return {(r["dbname"], int(r["queryid"]), r["rolname"]):
                StatementRef(queryid=int(r["queryid"]), rolname=r["rolname"], text=r["text"], calls=int(r["calls"]))
                for r in rows}
