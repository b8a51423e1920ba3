"""Read the archive: commits from WAL with pg_waldump (the only trustworthy 'latest recoverable' bound) and
timeline history files, fetched through pgBackRest into a private temporary directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opsd.adapters import files
from opsd.adapters.pgbackrest import PgBackRest
from opsd.adapters.runner import Runner

_COMMIT = re.compile(r"\btx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),.*?desc: COMMIT(?:_PREPARED)? "
                     r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) ([A-Za-z]+)")


@dataclass(frozen=True)
class Commit:
    """One commit record: when, which transaction, and where in the WAL."""

    time: datetime
    xid: int
    lsn: str


def last_commit(waldump_output: str) -> Commit | None:
    """The last COMMIT record in pg_waldump's output (run with TZ=UTC). A commit of DDL carries more after the
    zone (``... UTC; inval msgs: ...``)."""
    last = None
    for line in waldump_output.splitlines():
        m = _COMMIT.search(line)
        if m:
            last = m
    if last is None:
        return None
    xid, lsn, stamp, zone = last.groups()
    if zone not in ("UTC", "GMT"):
        raise ValueError(f"pg_waldump printed a commit time in {zone!r}; run it with TZ=UTC")
    return Commit(datetime.fromisoformat(stamp + "+00:00"), int(xid), lsn)


@dataclass(frozen=True)
class ArchiveReader:
    pgbr: PgBackRest
    runner: Runner
    bin_dir: Path
    tmp: Path

    def _fetch(self, name: str) -> Path | None:
        dest = self.tmp / name
        return dest if self.pgbr.archive_get(name, str(dest)) else None

    def text(self, name: str) -> str | None:
        """An archived text file (a timeline ``.history``), or None if the repository does not have it."""
        got = self._fetch(name)
        if got is None:
            return None
        try:
            return got.read_text()
        finally:
            got.unlink(missing_ok=True)

    def last_commit(self, wal: str) -> Commit | None:
        """The last commit record of an archived WAL segment (None: no such segment, or no commit in it)."""
        got = self._fetch(wal)
        if got is None:
            return None
        try:
            res = self.runner.run([str(self.bin_dir / "pg_waldump"), str(got)], timeout=120, env={"TZ": "UTC"},
                                  log_output=False)
        finally:
            got.unlink(missing_ok=True)
        return last_commit(res.stdout)


@contextmanager
def archive_reader(pgbr: PgBackRest, runner: Runner, bin_dir: Path, state_dir: Path, user: str
                   ) -> Iterator[ArchiveReader]:
    with files.scratch_dir(state_dir / "tmp", user) as tmp:
        yield ArchiveReader(pgbr, runner, bin_dir, tmp)
