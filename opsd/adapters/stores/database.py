"""The state file: one SQLite database in WAL mode, created 0600 whatever the umask, migrated to the schema
this opsd knows (``PRAGMA user_version``) the first time a process opens it. When opsd runs as root the file
is handed to ``run_as``, so the daemon (running as that user) keeps writing the same history."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import ClassVar

from opsd.adapters.files import ensure_dir, give_to
from opsd.adapters.stores.migrations import LATEST, MIGRATIONS
from opsd.errors import OpsdError

FILE_MODE = 0o600
_HINT = "check its owner (it must belong to opsd.run_as) and free disk space"


class NewerSchema(OpsdError):
    """The file was written by a newer opsd: never downgrade it by writing with an older one."""


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply the steps this file lacks, in one transaction each; returns the version it had."""
    refuse_newer(conn, path)
    _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
    # one process migrates; others wait (busy_timeout), then see it done
    _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        have = refuse_newer(conn, path)
        for version in range(have + 1, LATEST + 1):
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
        return have
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _retry_locked(step: Callable[[], object], patience: float = 30.0) -> None:
    """Switching to WAL and BEGIN IMMEDIATE can answer "database is locked" at once, without the busy handler,
    while another process opens the same new file: try again for a while."""
    deadline = time.monotonic() + patience
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def refuse_newer(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; a newer one than this opsd knows is refused before anything is written."""
    have = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if have > LATEST:
        raise NewerSchema(f"{path} has schema version {have}, this opsd knows up to {LATEST}",
                          hint="run the opsd version that wrote it, or restore the file from before the upgrade")
    return have


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s]


class StateDB:
    _migrated: ClassVar[set[str]] = set()

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner

    def _create(self) -> None:
        ensure_dir(self.path.parent, self.owner)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, FILE_MODE)
        except OSError as e:
            raise OpsdError(f"cannot create {self.path}: {e.strerror}", hint=_HINT) from None
        os.close(fd)
        for suffix in ("", "-wal", "-shm"):  # SQLite gives -wal and -shm the mode of the database file
            p = Path(f"{self.path}{suffix}")
            if p.exists() and not p.is_symlink():
                os.chmod(p, FILE_MODE)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        first = str(self.path) not in self._migrated
        if first:
            self._create()
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as e:
            raise OpsdError(f"cannot open run history {self.path}: {e}") from None
        with closing(conn):
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL mode: consistent after a crash, fsync at checkpoints
                if first:  # once per process, not on every open
                    migrate(conn, self.path)
                    self._migrated.add(str(self.path))
            except sqlite3.Error as e:
                raise OpsdError(f"run history {self.path} is not usable: {e}", hint=_HINT) from None
            for suffix in ("", "-wal", "-shm"):
                give_to(Path(f"{self.path}{suffix}"), self.owner)
            yield conn
