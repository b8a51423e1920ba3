"""Read the archive: commits from WAL with pg_waldump (the only trustworthy 'latest recoverable' bound) and
timeline history files, fetched through pgBackRest into a private temporary directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opsd.adapters import files
from opsd.adapters.pgbackrest import PgBackRest
from opsd.adapters.runner import Runner
from opsd.adapters.walcache import MISS, SegmentCache, decode_facts, encode_facts
from opsd.core.wal import SegmentFacts, Stamped

_XACT = re.compile(r"\btx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),.*?desc: (COMMIT|ABORT)(?:_PREPARED)? (?:\d+: )?"
                   r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) ([A-Za-z]+)")


@dataclass(frozen=True)
class Commit:
    """One commit record: when, which transaction, and where in the WAL."""

    time: datetime
    xid: int
    lsn: str


def ended(waldump_output: str, kinds: tuple[str, ...] = ("COMMIT", "ABORT")) -> list[Stamped]:
    """The transactions that ended in pg_waldump's output (run with TZ=UTC), in WAL order: commit and abort
    records, prepared ones too. A commit of DDL carries more after the zone (``... UTC; inval msgs: ...``)."""
    out = []
    for line in waldump_output.splitlines():
        m = _XACT.search(line)
        if m is None or m.group(3) not in kinds:
            continue
        xid, lsn, _kind, stamp, zone = m.groups()
        if zone not in ("UTC", "GMT"):
            raise ValueError(f"pg_waldump printed a transaction time in {zone!r}; run it with TZ=UTC")
        out.append(Stamped(int(xid), lsn, datetime.fromisoformat(stamp + "+00:00")))
    return out


_RESTART = re.compile(r"\blsn: ([0-9A-F]+/[0-9A-F]+),.*?desc: (?:CHECKPOINT_SHUTDOWN|END_OF_RECOVERY)\b")
_WRITE = re.compile(r"\btx:\s*([1-9]\d*),")


def segment_facts(waldump_output: str) -> SegmentFacts:
    """Who wrote a segment: the transactions that ended in it, and each start-up checkpoint that a transaction's
    record follows (a server that started and then took writes; a crash recovery alone, as Patroni runs one
    before pg_rewind, writes its checkpoint and a WAL switch, and no transaction)."""
    restarts: list[str] = []
    pending = None
    for line in waldump_output.splitlines():
        if m := _RESTART.search(line):
            pending = m.group(1)
        elif pending is not None and _WRITE.search(line):
            restarts.append(pending)
            pending = None
    return SegmentFacts(tuple(ended(waldump_output)), tuple(restarts))


def last_commit(waldump_output: str) -> Commit | None:
    """The last COMMIT record in pg_waldump's output."""
    commits = ended(waldump_output, ("COMMIT",))
    return Commit(commits[-1].time, commits[-1].xid, commits[-1].lsn) if commits else None


@dataclass(frozen=True)
class ArchiveReader:
    pgbr: PgBackRest
    runner: Runner
    bin_dir: Path
    tmp: Path
    cache: SegmentCache = field(default_factory=lambda: SegmentCache(None, {}, ""))

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

    def _dump(self, wal: str) -> str | None:
        got = self._fetch(wal)
        if got is None:
            return None
        try:
            return self.runner.run([str(self.bin_dir / "pg_waldump"), str(got)], timeout=120, env={"TZ": "UTC"},
                                   log_output=False).stdout
        finally:
            got.unlink(missing_ok=True)

    def last_commit(self, wal: str) -> Commit | None:
        """The last commit record of an archived WAL segment (None: no such segment, or no commit in it)."""
        hit = self.cache.get("last_commit", wal)
        if hit is not MISS:
            return None if hit is None else Commit(datetime.fromisoformat(hit[0]), int(hit[1]), str(hit[2]))
        out = self._dump(wal)
        got = None if out is None else last_commit(out)
        if out is not None:
            self.cache.put("last_commit", wal, None if got is None else [got.time.isoformat(), got.xid, got.lsn])
        return got

    def facts(self, wal: str) -> SegmentFacts | None:
        """Who wrote an archived WAL segment (None: the repository does not have it)."""
        hit = self.cache.get("facts", wal)
        if hit is not MISS:
            return decode_facts(hit)
        out = self._dump(wal)
        got = None if out is None else segment_facts(out)
        if got is not None:
            self.cache.put("facts", wal, encode_facts(got))
        return got


@contextmanager
def archive_reader(pgbr: PgBackRest, runner: Runner, bin_dir: Path, state_dir: Path, user: str, *,
                   cache: SegmentCache | None = None) -> Iterator[ArchiveReader]:
    """``cache``: what earlier reads found in the segments (saved back afterwards)."""
    with files.scratch_dir(state_dir / "tmp", user) as tmp:
        reader = ArchiveReader(pgbr, runner, bin_dir, tmp) if cache is None else \
            ArchiveReader(pgbr, runner, bin_dir, tmp, cache)
        yield reader
        reader.cache.save()
