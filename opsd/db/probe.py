"""The health probe's connection: one reused connection for every probe (statement_timeout and lock_timeout
set), at most one probe in flight. A probe that times out is reported as such; it never queues behind a lock
and never piles up."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from opsd.core.availability import DOWN, UP, Reach
from opsd.db.connection import Conn, Connect, factory
from opsd.errors import DatabaseError, OpsdError, QueryTimeout
from opsd.settings import Settings

T = TypeVar("T")


class ProbeBusy(OpsdError):
    """The previous probe is still running: this one is skipped, never queued."""


# a connection refused for these reasons reached a server that answers: it proves neither up nor down
_ANSWERED = ("28", "3D")  # invalid authorization (pg_hba, password, role), no such database


def _connect_failed(e: DatabaseError) -> Reach | None:
    state = getattr(e.__context__, "sqlstate", None)  # the psycopg error the connection factory turned into e
    return None if state and state[:2] in _ANSWERED else Reach(DOWN, str(e))


class Probe:
    """One reused connection for every probe; at most one probe in flight. A broken connection is reopened
    at the next probe; a timed-out one is kept (the server cancelled the statement, the session is fine).
    ``reach``: what the last probe proved about the server (core/availability.py): up (it answered), down (no
    connection, a timeout, the connection broke), None (neither: an authentication or query error)."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._conn: Conn | None = None
        self._busy = threading.Lock()
        self.reach: Reach | None = None

    def run(self, fn: Callable[[Conn], T]) -> T:
        if not self._busy.acquire(blocking=False):
            raise ProbeBusy("previous probe still running: skipped")
        self.reach = None
        try:
            if self._conn is None or self._conn.closed:
                try:
                    self._conn = self._connect()
                except DatabaseError as e:
                    self.reach = _connect_failed(e)
                    raise
            try:
                out = fn(self._conn)
            except QueryTimeout as e:
                self.reach = Reach(DOWN, f"probe timed out: {e}")
                raise
            except DatabaseError as e:
                self.reach = Reach(DOWN, f"connection lost: {e}") if self._conn.broken else None
                self.close()
                raise
            self.reach = Reach(UP)
            return out
        finally:
            self._busy.release()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def probe_for(settings: Settings) -> Probe:
    h = settings.health
    pg = settings.postgres.model_copy(update={"statement_timeout": h.probe_timeout})
    return Probe(factory(pg, lock_timeout_ms=max(1, int(h.probe_lock_timeout.total_seconds() * 1000)),
                         run_as=settings.opsd.run_as))
