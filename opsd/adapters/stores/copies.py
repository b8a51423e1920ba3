"""The copies of production this host runs (table ``copies`` of the state file): written before a copy's files
are restored, removed once they are gone. Unlike the run history, a copy that cannot be recorded is not made:
an unrecorded copy is one nobody would find after a crash."""

from __future__ import annotations

from opsd.adapters.stores.database import StateDB, decoded
from opsd.core.records.copies import CopyRecord


class CopyStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def put(self, rec: CopyRecord) -> None:
        with self.db.connect() as c:
            c.execute("INSERT OR REPLACE INTO copies (id, data, version) VALUES (?, ?, ?)",
                      (rec.id, rec.model_dump_json(), rec.VERSION))

    def remove(self, copy_id: str) -> None:
        with self.db.connect() as c:
            c.execute("DELETE FROM copies WHERE id = ?", (copy_id,))

    @decoded
    def all(self) -> list[CopyRecord]:
        with self.db.connect() as c:
            rows = c.execute("SELECT data, version FROM copies ORDER BY id").fetchall()
        return [CopyRecord.model_validate_json(r["data"]) for r in rows]
