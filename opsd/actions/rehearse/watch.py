"""While the command runs: the migration role's relation locks on the copy, sampled every
``rehearse.sample_interval`` (pg_locks), and production's sessions of that role, every second (a command that
reached production instead of its copy shows there, and not on the copy)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from opsd.core.rehearse.locks import Sample, Span, Spans
from opsd.core.rehearse.statements import shown
from opsd.db import rehearse as db
from opsd.db.connection import Conn
from opsd.errors import DatabaseError
from opsd.log import get_logger

PRODUCTION_EVERY = 1.0


@dataclass(eq=False)  # a thread is hashed by threading's own registry
class Watch(threading.Thread):
    """Started before the command, stopped after it: the lock spans, the sessions seen on each side."""

    copy: Callable[[], Conn]
    production: Callable[[], Conn] | None
    role: str
    since: datetime
    interval: float
    spans: Spans = field(init=False)
    copy_sessions: int = 0
    production_sessions: int = 0
    production_unchecked: str | None = None
    problem: str | None = None
    samples: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(name="opsd-rehearse-watch", daemon=True)
        self.spans = Spans(self.interval)

    def run(self) -> None:
        try:
            with self.copy() as conn:
                conn.execute("SET log_min_duration_statement = -1")  # opsd's samples stay out of the copy's log
                self._loop(conn)
        except DatabaseError as e:
            self.problem = f"the copy's locks could not be sampled: {e}"
            get_logger().error("rehearse.watch_failed", error=str(e))

    def _loop(self, conn: Conn) -> None:
        prod = self._production()
        next_prod = 0.0
        try:
            while True:
                at = time.monotonic()
                rows = db.locks(conn, self.role)
                self.samples += 1
                self.spans.add(at, [Sample(at, r.pid, r.relation, r.mode, shown(r.query)) for r in rows])
                if at >= next_prod:
                    self._count(conn, prod)
                    next_prod = at + PRODUCTION_EVERY
                if self.done.wait(max(0.0, self.interval - (time.monotonic() - at))):
                    break
            self._count(conn, prod)
        finally:
            if prod is not None:
                prod.close()

    def _production(self) -> Conn | None:
        if self.production is None:
            self.production_unchecked = "no production server on this host"
            return None
        try:
            return self.production()
        except DatabaseError as e:
            self.production_unchecked = f"production could not be reached to check: {e}"
            return None

    def _count(self, conn: Conn, prod: Conn | None) -> None:
        self.copy_sessions = max(self.copy_sessions, db.sessions_since(conn, self.role, self.since))
        if prod is None:
            return
        try:
            self.production_sessions = max(self.production_sessions, db.sessions_since(prod, self.role, self.since))
        except DatabaseError as e:
            self.production_unchecked = f"production's sessions could not be read: {e}"

    def stop(self) -> list[Span]:
        self.done.set()
        self.join(timeout=30)
        return self.spans.finish()
