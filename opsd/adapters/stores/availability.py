"""Availability spans in the state file (table ``availability``, schema step 6): up and down time as the health
probe saw it, one row per span, extended by each probe (core/availability.step). Kept whole, whatever ``[health]
keep`` thins: a month of probes every 30 s is a few rows, one per outage and per restart of opsd."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsd.adapters.stores.database import StateDB, decoded
from opsd.core.availability import Reach, step
from opsd.core.records.service import AvailabilitySpan


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()  # one offset: stored times compare as text, by index


def _span(r: Any) -> AvailabilitySpan:
    return AvailabilitySpan(id=r["id"], state=r["state"], start_at=datetime.fromisoformat(r["start_at"]),
                            end_at=datetime.fromisoformat(r["end_at"]), what=r["what"])


_LAST = "SELECT * FROM availability ORDER BY end_at DESC, id DESC LIMIT 1"


class AvailabilityStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def note(self, reach: Reach, at: datetime, bound: timedelta) -> None:
        """One probe's outcome at ``at``: the last span extended or ended, a new one started (one transaction)."""
        with self.db.connect() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                r = c.execute(_LAST).fetchone()
                change = step(_span(r) if r else None, reach, at, bound)
                if (u := change.update) is not None:
                    c.execute("UPDATE availability SET end_at = ?, what = ? WHERE id = ?",
                              (_ts(u.end_at), u.what, u.id))
                if (n := change.new) is not None:
                    c.execute("INSERT INTO availability (state, start_at, end_at, what) VALUES (?, ?, ?, ?)",
                              (n.state, _ts(n.start_at), _ts(n.end_at), n.what))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    @decoded
    def last(self) -> AvailabilitySpan | None:
        with self.db.connect() as c:
            r = c.execute(_LAST).fetchone()
        return _span(r) if r else None

    @decoded
    def spans(self, since: datetime, until: datetime) -> list[AvailabilitySpan]:
        """The spans that overlap [since, until), oldest first (by index on end_at)."""
        with self.db.connect() as c:
            rows = c.execute("SELECT * FROM availability WHERE end_at >= ? AND start_at < ? ORDER BY start_at, id",
                             (_ts(since), _ts(until))).fetchall()
        return [_span(r) for r in rows]
