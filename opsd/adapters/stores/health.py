"""Health samples and incidents, in the state file (tables ``health_samples`` and
``incidents``). Samples are pruned after ``health.sample_retention``; incidents are kept."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from opsd.adapters.stores.database import StateDB, decoded
from opsd.core.records.health import (
    MOMENT_VERSION,
    SAMPLE_VERSION,
    HealthSample,
    IncidentMoment,
    load_moment,
    load_sample,
)
from opsd.core.records.runs import Incident


def _inc(r: Any) -> Incident:
    return Incident(r["id"], r["key"], r["kind"], datetime.fromisoformat(r["opened_at"]),
                    datetime.fromisoformat(r["last_seen"]),
                    datetime.fromisoformat(r["closed_at"]) if r["closed_at"] else None, r["summary"], r["peak"],
                    load_moment(json.loads(r["worst"] or "{}"), r["worst_version"]))


class HealthStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def _conn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self.db.connect()

    def add_sample(self, sample: HealthSample, retention_before: datetime) -> None:
        with self._conn() as c:
            c.execute("INSERT INTO health_samples (taken_at, data, data_version) VALUES (?, ?, ?)",
                      (sample.taken_at.isoformat(), json.dumps(sample.as_json()), SAMPLE_VERSION))
            c.execute("DELETE FROM health_samples WHERE taken_at < ?", (retention_before.isoformat(),))

    @decoded
    def last_sample(self) -> HealthSample | None:
        with self._conn() as c:
            r = c.execute("SELECT data, data_version FROM health_samples ORDER BY id DESC LIMIT 1").fetchone()
        return load_sample(json.loads(r["data"]), r["data_version"]) if r else None

    @decoded
    def samples(self, since: datetime) -> list[HealthSample]:
        with self._conn() as c:
            rows = c.execute("SELECT data, data_version FROM health_samples WHERE taken_at >= ? ORDER BY id",
                             (since.astimezone(UTC).isoformat(),)).fetchall()
        return [load_sample(json.loads(r["data"]), r["data_version"]) for r in rows]

    @decoded
    def open_incidents(self) -> list[Incident]:
        with self._conn() as c:
            return [_inc(r) for r in c.execute("SELECT * FROM incidents WHERE closed_at IS NULL ORDER BY id")]

    @decoded
    def incidents(self, since: datetime | None = None, limit: int = 200) -> list[Incident]:
        with self._conn() as c:
            if since is None:
                rows = c.execute("SELECT * FROM incidents ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = c.execute("SELECT * FROM incidents WHERE closed_at IS NULL OR closed_at >= ? "
                                 "ORDER BY id DESC LIMIT ?", (since.astimezone(UTC).isoformat(), limit)).fetchall()
        return [_inc(r) for r in rows]

    @decoded
    def opened_between(self, start: datetime, end: datetime) -> list[Incident]:
        with self._conn() as c:
            rows = c.execute("SELECT * FROM incidents WHERE opened_at >= ? AND opened_at < ? ORDER BY id",
                             (start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat())).fetchall()
        return [_inc(r) for r in rows]

    def open(self, key: str, kind: str, at: datetime, *, summary: str, peak: float, worst: IncidentMoment) -> int:
        with self._conn() as c:
            cur = c.execute("INSERT INTO incidents (key, kind, opened_at, last_seen, summary, peak, worst, "
                            "worst_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (key, kind, at.isoformat(), at.isoformat(), summary, peak, json.dumps(worst.as_json()),
                             MOMENT_VERSION))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def seen(self, incident_id: int, at: datetime, worse: tuple[str, float, IncidentMoment] | None) -> None:
        """Still open at ``at``; ``worse`` replaces the worst moment kept so far."""
        with self._conn() as c:
            c.execute("UPDATE incidents SET last_seen = ? WHERE id = ?", (at.isoformat(), incident_id))
            if worse is not None:
                summary, peak, worst = worse
                c.execute("UPDATE incidents SET summary = ?, peak = ?, worst = ?, worst_version = ? WHERE id = ?",
                          (summary, peak, json.dumps(worst.as_json()), MOMENT_VERSION, incident_id))

    def close(self, incident_id: int, at: datetime) -> None:
        with self._conn() as c:
            c.execute("UPDATE incidents SET closed_at = ? WHERE id = ?", (at.isoformat(), incident_id))
