"""The run history (table ``runs`` of the state file): every job run with start, end, outcome, error and details."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from opsd.adapters.stores.database import StateDB, decoded
from opsd.adapters.stores.pending import Journal, Pending
from opsd.core.records.base import Note, Record
from opsd.core.records.runs import OUTCOMES, AnyRecord, Outcome, Run, load_details
from opsd.errors import OpsdError
from opsd.log import get_logger


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _row(r: sqlite3.Row) -> Run:
    started = _dt(r["started_at"])
    assert started is not None
    details = load_details(r["job"], r["details_kind"], r["details_version"], json.loads(r["details"] or "{}"))
    return Run(r["id"], r["job"], r["trigger"], r["host"], r["pid"], started, _dt(r["finished_at"]),
               Outcome(r["outcome"]), r["error"], cast("AnyRecord", details))


_NEWEST = "ORDER BY started_at DESC, id DESC LIMIT 1"


class History:
    """The ``runs`` table: every job run with start, end, outcome, error and details."""

    def __init__(self, state_dir: Path, owner: str) -> None:
        self.db = StateDB(state_dir / "history.sqlite3", owner)
        self.journal = Journal(state_dir / "history.pending.jsonl", owner)
        self.path = self.db.path
        self.state_dir = state_dir
        self.owner = owner

    def _conn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self.db.connect()

    def start(self, job: str, trigger: str, started_at: datetime | None = None) -> int:
        import os

        with self._conn() as c:
            cur = c.execute(
                "INSERT INTO runs (job, trigger, host, pid, started_at) VALUES (?, ?, ?, ?, ?)",
                (job, trigger, socket.gethostname(), os.getpid(),
                 (started_at or datetime.now(UTC)).isoformat()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def finish(self, run_id: int, outcome: str, *, error: str | None = None,
               details: Record | None = None, finished_at: datetime | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        d = details if details is not None else Note()
        with self._conn() as c:
            c.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, error = ?, details = ?, details_kind = ?, "
                "details_version = ? WHERE id = ?",
                ((finished_at or datetime.now(UTC)).isoformat(), outcome, error, d.model_dump_json(), d.KIND,
                 d.VERSION, run_id),
            )

    def record(self, job: str, trigger: str, started_at: datetime, finished_at: datetime, outcome: str,
               *, error: str | None = None, details: Record | None = None) -> int:
        """Insert a finished run in one go (imports, tests and benchmarks)."""
        run_id = self.start(job, trigger, started_at)
        self.finish(run_id, outcome, error=error, details=details, finished_at=finished_at)
        return run_id

    def record_once(self, job: str, trigger: str, started_at: datetime, finished_at: datetime, outcome: str, *,
                    host: str, error: str | None = None, details: Record | None = None) -> int | None:
        """Insert a finished run of another host (an imported fleet drill; pid 0) unless the history already has a
        run of ``job`` by ``host`` that started at ``started_at``: its id, or None when it was there. One
        transaction: two imports at once never insert it twice."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        d = details if details is not None else Note()
        start = started_at.astimezone(UTC).isoformat()
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                there = c.execute("SELECT 1 FROM runs WHERE started_at = ? AND job = ? AND host = ?",
                                  (start, job, host)).fetchone() is not None
                cur = None if there else c.execute(
                    "INSERT INTO runs (job, trigger, host, pid, started_at, finished_at, outcome, error, details, "
                    "details_kind, details_version) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
                    (job, trigger, host, start, finished_at.astimezone(UTC).isoformat(), outcome, error,
                     d.model_dump_json(), d.KIND, d.VERSION))
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
        return None if cur is None else cur.lastrowid

    @decoded
    def started(self, job: str, trigger: str) -> set[tuple[str, datetime]]:
        """(host, start) of every run of ``job`` with ``trigger``: what an import already holds."""
        with self._conn() as c:
            rows = c.execute("SELECT host, started_at FROM runs WHERE job = ? AND trigger = ?",
                             (job, trigger)).fetchall()
        return {(r["host"], datetime.fromisoformat(r["started_at"])) for r in rows}

    @decoded
    def last(self, job: str, outcomes: tuple[str, ...] | None = None) -> Run | None:
        q = "SELECT * FROM runs WHERE job = ?"
        args: list[Any] = [job]
        if outcomes:
            q += f" AND outcome IN ({','.join('?' * len(outcomes))})"
            args += list(outcomes)
        with self._conn() as c:
            r = c.execute(q + " ORDER BY started_at DESC, id DESC LIMIT 1", args).fetchone()
        return _row(r) if r else None

    @decoded
    def latest(self, jobs: tuple[str, ...], ok: tuple[str, ...]) -> dict[str, tuple[Run | None, Run | None]]:
        """For each job, its last run and its last run with an outcome in ``ok``: one connection, two index
        probes a job (``opsd status``)."""
        out: dict[str, tuple[Run | None, Run | None]] = {}
        last_ok = f"SELECT * FROM runs WHERE job = ? AND outcome IN ({','.join('?' * len(ok))}) {_NEWEST}"
        with self._conn() as c:
            for job in jobs:
                r = c.execute(f"SELECT * FROM runs WHERE job = ? {_NEWEST}", (job,)).fetchone()
                g = c.execute(last_ok, (job, *ok)).fetchone() if r is not None else None
                last = _row(r) if r is not None else None
                out[job] = (last, None if g is None else last if last and g["id"] == last.id else _row(g))
        return out

    @decoded
    def get(self, run_id: int) -> Run | None:
        with self._conn() as c:
            r = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _row(r) if r else None

    @decoded
    def runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        with self._conn() as c:
            if job:
                rows = c.execute("SELECT * FROM runs WHERE job = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                                 (job, limit)).fetchall()
            else:
                rows = c.execute("SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [_row(r) for r in rows]

    @decoded
    def among_last(self, job: str, outcome: str, limit: int = 1000) -> list[Run]:
        """The runs with ``outcome`` among the last ``limit`` runs of ``job`` (newest first): only those are
        decoded, whatever the others hold (the metrics count skipped runs every scrape)."""
        with self._conn() as c:
            rows = c.execute("SELECT * FROM (SELECT id, outcome, started_at FROM runs WHERE job = ? "
                             "ORDER BY started_at DESC, id DESC LIMIT ?) last JOIN runs USING (id) "
                             "WHERE runs.outcome = ? ORDER BY runs.started_at DESC, runs.id DESC",
                             (job, limit, outcome)).fetchall()
        return [_row(r) for r in rows]

    @decoded
    def between(self, start: datetime, end: datetime) -> list[Run]:
        """Every run that started in [start, end), oldest first."""
        lo, hi = start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()
        with self._conn() as c:
            rows = c.execute("SELECT * FROM runs WHERE started_at >= ? AND started_at < ? ORDER BY started_at, id",
                             (lo, hi)).fetchall()
        return [_row(r) for r in rows]

    def mark_interrupted(self, host: str, alive: set[int]) -> int:
        """Runs left 'running' by a process of this host that no longer exists become 'interrupted'."""
        with self._conn() as c:
            rows = c.execute("SELECT id, pid FROM runs WHERE outcome = 'running' AND host = ?", (host,)).fetchall()
            stale = [r["id"] for r in rows if r["pid"] not in alive]
            for rid in stale:
                c.execute("UPDATE runs SET outcome = 'interrupted', finished_at = ?, error = ? WHERE id = ?",
                          (datetime.now(UTC).isoformat(), "process ended before the run finished", rid))
        return len(stale)

    def keep(self, job: str, trigger: str, started_at: datetime, finished_at: datetime, outcome: str, *,
             error: str | None = None, details: Record | None = None) -> bool:
        """A run the history could not take: kept for :meth:`flush` (True: in the journal file too)."""
        import os

        d = details if details is not None else Note()
        return self.journal.keep(Pending(
            job=job, trigger=trigger, host=socket.gethostname(), pid=os.getpid(), started_at=started_at.isoformat(),
            finished_at=finished_at.isoformat(), outcome=str(outcome), error=error, details=d.model_dump_json(),
            kind=d.KIND, version=d.VERSION))

    def flush(self) -> int:
        """Write the kept runs into the history (raises OpsdError if it still cannot); how many."""
        if not self.journal.present():
            return 0
        waiting = self.journal.waiting()
        try:
            rejected = self.journal.set_aside()
        except (OSError, OpsdError) as e:
            raise OpsdError(f"cannot set aside the damaged lines of {self.journal.path}: {e}") from None
        if rejected:
            get_logger().warning("history.pending_rejected", lines=rejected, path=str(self.journal.rejected_path))
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            for r in waiting:
                c.execute("INSERT INTO runs (job, trigger, host, pid, started_at, finished_at, outcome, error, "
                          "details, details_kind, details_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (r.job, r.trigger, r.host, r.pid, r.started_at, r.finished_at, r.outcome, r.error,
                           r.details, r.kind, r.version))
            c.execute("COMMIT")
        self.journal.clear()
        return len(waiting)
