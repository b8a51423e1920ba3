"""Health samples and incidents, in the state file (tables ``health_samples`` and ``incidents``). Samples are
thinned and pruned by ``[health] keep`` (core/thinning.py) a bounded batch at a time; incidents are kept."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
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
from opsd.core.thinning import Keep, SampleFigures, bucket_of, figures, to_delete

FIGURES = ("lock_wait", "conn_share", "pool_maxwait", "pool_waiting", "replay_lag", "problems")
BUCKETS_A_BATCH = 32  # buckets thinned in one transaction (1h buckets: at most 3840 samples looked at)


_WORST_OF = ("SELECT id, max(coalesce({f}, 0)) FROM health_samples WHERE taken_at >= ? AND taken_at < ? "
             "GROUP BY CAST(strftime('%s', taken_at) AS INTEGER) / ?")
# the row of each group's max() is the one SQLite returns the bare column of (ties: any one of them)
_WORST = ("SELECT data, data_version FROM health_samples WHERE id IN "
          f"(SELECT id FROM ({_WORST_OF.format(f='pool_waiting')}) "
          f"UNION SELECT id FROM ({_WORST_OF.format(f='replay_lag')})) ORDER BY taken_at, id")


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()  # one offset: the stored times compare as text, by index


def _thin_batch(c: sqlite3.Connection, step: timedelta, finer: list[int], before: datetime) -> int | None:
    """Thin the oldest whole buckets of ``step`` that end before ``before`` and hold a sample of a ``finer`` step
    (seconds, 0: every sample): one transaction. None when none is left; else how many samples it deleted."""
    secs = int(step.total_seconds())
    edge = datetime.fromtimestamp(bucket_of(before, step) * secs, UTC)  # only whole buckets
    firsts = [c.execute("SELECT min(taken_at) FROM health_samples WHERE step = ? AND taken_at < ?",
                        (s, _ts(edge))).fetchone()[0] for s in finer]  # each by index, not a scan of the recent
    first = min((f for f in firsts if f is not None), default=None)
    if first is None:
        return None
    lo = datetime.fromtimestamp(bucket_of(datetime.fromisoformat(first), step) * secs, UTC)
    hi = min(edge, lo + step * BUCKETS_A_BATCH)
    c.execute("BEGIN IMMEDIATE")
    try:
        rows = c.execute(f"SELECT id, taken_at, step, {', '.join(FIGURES)} FROM health_samples "
                         "INDEXED BY health_samples_taken WHERE taken_at >= ? AND taken_at < ? AND step < ?",
                         (_ts(lo), _ts(hi), secs)).fetchall()
        gone = to_delete([SampleFigures(r["id"], datetime.fromisoformat(r["taken_at"]),
                                        tuple(float(r[f] or 0) for f in FIGURES)) for r in rows], step)
        c.executemany("DELETE FROM health_samples WHERE id = ?", [(i,) for i in gone])
        c.execute("UPDATE health_samples SET step = ? WHERE taken_at >= ? AND taken_at < ? AND step < ?",
                  (secs, _ts(lo), _ts(hi), secs))
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return len(gone)


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

    def add_sample(self, sample: HealthSample) -> None:
        with self._conn() as c:
            c.execute(f"INSERT INTO health_samples (taken_at, data, data_version, {', '.join(FIGURES)}) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (_ts(sample.taken_at), json.dumps(sample.as_json()), SAMPLE_VERSION, *figures(sample)))

    def prune(self, keep: Keep, now: datetime, batches: int = 4) -> int:
        """Delete the samples past ``keep``'s horizon and thin each tier, at most ``batches`` short transactions
        a tier (each a few thousand rows at most): called after every sample, it catches up over later calls
        instead of stalling the daemon. How many samples it deleted."""
        deleted = 0
        with self._conn() as c:
            for _ in range(batches):
                n = c.execute("DELETE FROM health_samples WHERE id IN (SELECT id FROM health_samples "
                              "WHERE taken_at < ? ORDER BY taken_at LIMIT 1000)", (_ts(now - keep.horizon),)).rowcount
                deleted += n
                if n < 1000:
                    break
            younger, finer = timedelta(0), [0]
            for tier in keep.tiers:
                if tier.step is not None:
                    for _ in range(batches):
                        thinned = _thin_batch(c, tier.step, finer, now - younger)
                        if thinned is None:
                            break
                        deleted += thinned
                    finer.append(int(tier.step.total_seconds()))
                younger = tier.age
        return deleted

    @decoded
    def last_sample(self) -> HealthSample | None:
        with self._conn() as c:
            r = c.execute("SELECT data, data_version FROM health_samples ORDER BY id DESC LIMIT 1").fetchone()
        return load_sample(json.loads(r["data"]), r["data_version"]) if r else None

    @decoded
    def samples(self, since: datetime, until: datetime | None = None) -> list[HealthSample]:
        """The samples kept in [since, until), oldest first."""
        hi = _ts(until) if until is not None else "9999"
        with self._conn() as c:
            rows = c.execute("SELECT data, data_version FROM health_samples WHERE taken_at >= ? AND taken_at < ? "
                             "ORDER BY taken_at, id", (_ts(since), hi)).fetchall()
        return [load_sample(json.loads(r["data"]), r["data_version"]) for r in rows]

    @decoded
    def worst_samples(self, since: datetime, until: datetime, step: timedelta) -> list[HealthSample]:
        """Per ``step`` bucket of [since, until), the samples with the most PgBouncer clients waiting and the
        longest replay lag (what the monthly report charts and peaks): a month costs the same whatever the
        resolution kept, and only those samples are decoded."""
        args = (_ts(since), _ts(until), int(step.total_seconds()))
        with self._conn() as c:
            rows = c.execute(_WORST, args + args).fetchall()
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
