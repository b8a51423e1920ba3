"""Alert state (table ``alerts``: one row per key, firing or resolved) and the delivery log
(``alert_deliveries``) and the messages waiting to be delivered (``alert_pending``), in the state file, so a CLI
run and the daemon share them. Alerting must not depend on
that file: when it cannot be read or written (disk full, damaged, replaced), the state lives in this process's
memory until it can, and deliveries go on."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from opsd.adapters.stores.database import StateDB
from opsd.errors import OpsdError


@dataclass(frozen=True)
class AlertState:
    key: str
    firing: bool
    severity: str
    summary: str
    first_at: datetime
    last_sent: datetime | None


@dataclass(frozen=True)
class Pending:
    """An alert message not delivered yet on one channel: ``body`` is the JSON to send."""

    key: str
    channel: str
    kind: str
    body: str
    attempts: int
    first_at: datetime
    next_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class WaitingDeliveries:
    """What ``opsd status`` and the metrics show: how many messages wait, and since when the oldest."""

    count: int
    oldest_since: datetime | None


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()  # one offset: the stored times compare as text


def _pending(r: sqlite3.Row) -> Pending:
    return Pending(r["key"], r["channel"], r["kind"], r["body"], int(r["attempts"]),
                   datetime.fromisoformat(r["first_at"]), datetime.fromisoformat(r["next_at"]), r["last_error"])


class AlertStore:
    _memory: ClassVar[dict[str, dict[str, AlertState]]] = {}  # db path -> key -> state, while the file is broken
    _failed_deliveries: ClassVar[dict[str, int]] = {}

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def _conn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self.db.connect()

    @property
    def _mem(self) -> dict[str, AlertState]:
        return self._memory.setdefault(str(self.db.path), {})

    def get(self, key: str) -> AlertState | None:
        try:
            with self._conn() as c:
                r = c.execute("SELECT * FROM alerts WHERE key = ?", (key,)).fetchone()
            if r is None:
                return self._mem.get(key)
            return AlertState(r["key"], r["state"] == "firing", r["severity"], r["summary"],
                              datetime.fromisoformat(r["first_at"]),
                              datetime.fromisoformat(r["last_sent"]) if r["last_sent"] else None)
        except (OpsdError, ValueError):  # unreadable: the state of this process stands in
            return self._mem.get(key)

    def set_firing(self, key: str, severity: str, summary: str, first_at: datetime, sent_at: datetime) -> None:
        self._mem[key] = AlertState(key, True, severity, summary, first_at, sent_at)
        try:
            with self._conn() as c:
                c.execute("INSERT OR REPLACE INTO alerts (key, state, severity, summary, first_at, last_sent, "
                          "resolved_at) VALUES (?, 'firing', ?, ?, ?, ?, NULL)",
                          (key, severity, summary, first_at.isoformat(), sent_at.isoformat()))
        except OpsdError:
            return  # kept in memory: deduplication and resolve still work in this process
        self._mem.pop(key, None)

    def set_resolved(self, key: str, at: datetime) -> None:
        self._mem.pop(key, None)
        with contextlib.suppress(OpsdError), self._conn() as c:
            c.execute("UPDATE alerts SET state = 'resolved', resolved_at = ? WHERE key = ?",
                      (at.isoformat(), key))

    def firing(self) -> list[str]:
        keys = {k for k, v in self._mem.items() if v.firing}
        with contextlib.suppress(OpsdError), self._conn() as c:
            keys |= {r["key"] for r in c.execute("SELECT key FROM alerts WHERE state = 'firing'")}
        return sorted(keys)

    def log_delivery(self, at: datetime, key: str, kind: str, error: str | None) -> None:
        try:
            with self._conn() as c:
                c.execute("INSERT INTO alert_deliveries (at, key, kind, ok, error) VALUES (?, ?, ?, ?, ?)",
                          (at.isoformat(), key, kind, int(error is None), error))
        except OpsdError:
            if error is not None:
                self._failed_deliveries[str(self.db.path)] = self._failed_deliveries.get(str(self.db.path), 0) + 1

    def delivery_failures(self) -> int:
        counted = self._failed_deliveries.get(str(self.db.path), 0)
        with contextlib.suppress(OpsdError), self._conn() as c:
            counted += int(c.execute("SELECT count(*) FROM alert_deliveries WHERE ok = 0").fetchone()[0])
        return counted

    # ------------------------------------------------------------------ messages waiting for delivery
    def pend(self, p: Pending) -> None:
        """Keep ``p``, replacing a message waiting for the same key and channel (the newer one says more)."""
        with self._conn() as c:
            c.execute("INSERT OR REPLACE INTO alert_pending (key, channel, kind, body, attempts, first_at, next_at, "
                      "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (p.key, p.channel, p.kind, p.body, p.attempts, _ts(p.first_at), _ts(p.next_at), p.last_error))

    def due(self, now: datetime) -> list[Pending]:
        with self._conn() as c:
            rows = c.execute("SELECT * FROM alert_pending WHERE next_at <= ? ORDER BY first_at, key, channel",
                             (_ts(now),)).fetchall()
        return [_pending(r) for r in rows]

    def expired(self, cutoff: datetime) -> list[Pending]:
        with self._conn() as c:
            rows = c.execute("SELECT * FROM alert_pending WHERE first_at <= ? ORDER BY first_at",
                             (_ts(cutoff),)).fetchall()
        return [_pending(r) for r in rows]

    def claim(self, p: Pending, until: datetime) -> bool:
        """Take ``p`` for one attempt (its next_at moved to ``until``); False: another process took it first."""
        with self._conn() as c:
            cur = c.execute("UPDATE alert_pending SET next_at = ?, attempts = attempts + 1 WHERE key = ? AND "
                            "channel = ? AND first_at = ? AND next_at = ?",
                            (_ts(until), p.key, p.channel, _ts(p.first_at), _ts(p.next_at)))
            return cur.rowcount == 1

    def retry_at(self, p: Pending, next_at: datetime, error: str) -> None:
        with self._conn() as c:
            c.execute("UPDATE alert_pending SET next_at = ?, last_error = ? WHERE key = ? AND channel = ? AND "
                      "first_at = ?", (_ts(next_at), error, p.key, p.channel, _ts(p.first_at)))

    def forget(self, key: str, channel: str, first_at: datetime | None = None) -> None:
        """Drop the message waiting for ``key`` on ``channel`` (only the one of ``first_at``, when given)."""
        with self._conn() as c:
            if first_at is None:
                c.execute("DELETE FROM alert_pending WHERE key = ? AND channel = ?", (key, channel))
            else:
                c.execute("DELETE FROM alert_pending WHERE key = ? AND channel = ? AND first_at = ?",
                          (key, channel, _ts(first_at)))

    def waiting(self) -> WaitingDeliveries:
        with self._conn() as c:
            n, oldest = c.execute("SELECT count(*), min(first_at) FROM alert_pending").fetchone()
        return WaitingDeliveries(int(n), datetime.fromisoformat(oldest) if oldest else None)
