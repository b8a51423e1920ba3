"""The state file: one SQLite database in WAL mode, created 0600 whatever the umask, migrated to the schema
this opsd knows (``PRAGMA user_version``) the first time a process opens it. When opsd runs as root the file
is handed to ``run_as``, so the daemon (running as that user) keeps writing the same history."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

from opsd.adapters.files import ensure_dir, give_to
from opsd.adapters.stores.migrations import LATEST, MIGRATIONS
from opsd.errors import OpsdError

FILE_MODE = 0o600
_HINT = "check its owner (it must belong to opsd.run_as) and free disk space"


class NewerSchema(OpsdError):
    """The file was written by a newer opsd: never downgrade it by writing with an older one."""


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply the steps this file lacks, in one transaction each; returns the version it had. A damaged file is
    refused before anything is written into it (not even the switch to WAL mode); a current file is only read."""
    have = refuse_newer(conn, path)
    if have == LATEST and str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        # nothing to write: no whole-file check (quick_check reads every page: a tenth of a second at a year of
        # history, on every command); a query that meets a damaged page still says so (_explain)
        return have
    verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    if verdict != "ok":
        raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
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


def _explain(path: Path, e: sqlite3.Error | ValueError) -> OpsdError:
    """One line naming the file and what is wrong with it."""
    text = " ".join(str(e).split())[:200]  # SQLite may quote a damaged schema, newlines and all
    if "malformed" in text or "not a database" in text or isinstance(e, ValueError):
        return StoreDamaged(f"run history {path} is damaged ({text})",
                            hint=f"move it aside (mv {path} {path}.damaged): opsd starts a new one; the backups "
                                 "in the repository are not affected")
    if "full" in text:
        return OpsdError(f"run history {path}: the disk is full ({text})", hint="free space in opsd.state_dir")
    if "readonly" in text:
        return OpsdError(f"run history {path} is read-only ({text})", hint=_HINT)
    return OpsdError(f"run history {path} is not usable: {text}", hint=_HINT)


F = TypeVar("F", bound=Callable[..., Any])


def decoded(method: F) -> F:
    """A store method whose rows are decoded after the query: a row that does not decode (a bad time, JSON or
    outcome in a damaged file) is the same one line naming the file, never an internal error."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kw: Any) -> Any:
        try:
            return method(self, *args, **kw)
        except ValueError as e:
            raise _explain(self.db.path, e) from None

    return cast(F, wrapper)


class StoreDamaged(OpsdError):
    """The state file is not a readable SQLite database any more."""


class StateDB:
    # path -> (device, inode) of the file this process opened and migrated: a file that was moved away,
    # deleted or replaced since is opened afresh and its schema applied again
    _known: ClassVar[dict[str, tuple[int, int]]] = {}

    _problems: ClassVar[dict[str, str]] = {}  # path -> why the last write failed (this process)

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner
        self._held: tuple[int, sqlite3.Connection] | None = None

    @property
    def problem(self) -> str | None:
        """Why the last write of a run failed, until one succeeds again (STATUS=, metrics)."""
        return self._problems.get(str(self.path))

    @problem.setter
    def problem(self, why: str | None) -> None:
        if why is None:
            self._problems.pop(str(self.path), None)
        else:
            self._problems[str(self.path)] = why

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

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
    def held(self) -> Iterator[None]:
        """Bulk writes (benchmarks, imports): every :meth:`connect` of this object in this thread reuses one
        connection until the block ends, instead of opening (and checkpointing) the file at each call."""
        with self.connect() as conn:
            self._held = (threading.get_ident(), conn)
            try:
                yield
            finally:
                self._held = None

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        held = getattr(self, "_held", None)
        if held is not None and held[0] == threading.get_ident():
            try:
                yield held[1]
            except (sqlite3.Error, ValueError) as e:
                raise _explain(self.path, e) from None
            return
        ident = self._identity()
        first = ident is None or self._known.get(str(self.path)) != ident
        if first:
            self._create()
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as e:
            raise _explain(self.path, e) from None
        with closing(conn):
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL mode: consistent after a crash, fsync at checkpoints
                if first:  # once per file this process sees, not on every open
                    migrate(conn, self.path)
                    if (now := self._identity()) is not None:
                        self._known[str(self.path)] = now
            except sqlite3.Error as e:
                raise _explain(self.path, e) from None
            for suffix in ("", "-wal", "-shm"):
                give_to(Path(f"{self.path}{suffix}"), self.owner)
            try:
                yield conn
            except (sqlite3.Error, ValueError) as e:  # a query, or a row that does not decode (UnicodeDecodeError,
                raise _explain(self.path, e) from None  # a bad time or JSON): the same one line as an open

    def writable(self) -> str | None:
        """None when a write transaction can start now, else the one-line reason (metrics, STATUS=)."""
        try:
            with self.connect() as c:
                c.execute("BEGIN IMMEDIATE")
                c.execute("ROLLBACK")
        except OpsdError as e:
            return str(e)
        return None
