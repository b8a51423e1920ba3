"""Alert state (table ``alerts``: one row per key, firing or resolved) and the delivery log
(``alert_deliveries``), in the state file, so a CLI run and the daemon share them."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from opsd.adapters.stores.database import StateDB


@dataclass(frozen=True)
class AlertState:
    key: str
    firing: bool
    severity: str
    summary: str
    first_at: datetime
    last_sent: datetime | None


class AlertStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def _conn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self.db.connect()

    def get(self, key: str) -> AlertState | None:
        with self._conn() as c:
            r = c.execute("SELECT * FROM alerts WHERE key = ?", (key,)).fetchone()
        if r is None:
            return None
        return AlertState(r["key"], r["state"] == "firing", r["severity"], r["summary"],
                          datetime.fromisoformat(r["first_at"]),
                          datetime.fromisoformat(r["last_sent"]) if r["last_sent"] else None)

    def set_firing(self, key: str, severity: str, summary: str, first_at: datetime, sent_at: datetime) -> None:
        with self._conn() as c:
            c.execute("INSERT OR REPLACE INTO alerts (key, state, severity, summary, first_at, last_sent, "
                      "resolved_at) VALUES (?, 'firing', ?, ?, ?, ?, NULL)",
                      (key, severity, summary, first_at.isoformat(), sent_at.isoformat()))

    def set_resolved(self, key: str, at: datetime) -> None:
        with self._conn() as c:
            c.execute("UPDATE alerts SET state = 'resolved', resolved_at = ? WHERE key = ?", (at.isoformat(), key))

    def firing(self) -> list[str]:
        with self._conn() as c:
            return [r["key"] for r in c.execute("SELECT key FROM alerts WHERE state = 'firing' ORDER BY key")]

    def log_delivery(self, at: datetime, key: str, kind: str, error: str | None) -> None:
        with self._conn() as c:
            c.execute("INSERT INTO alert_deliveries (at, key, kind, ok, error) VALUES (?, ?, ?, ?, ?)",
                      (at.isoformat(), key, kind, int(error is None), error))

    def delivery_failures(self) -> int:
        with self._conn() as c:
            return int(c.execute("SELECT count(*) FROM alert_deliveries WHERE ok = 0").fetchone()[0])
