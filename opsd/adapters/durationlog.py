"""Read PostgreSQL's duration log (jsonlog or csvlog files in its log directory) from where the last read
stopped: the rest of that file, then each later file in the order PostgreSQL wrote them (modification time,
then name). Only the records that are a statement's duration are kept, as :class:`SlowExec` (no statement
text). A window whose log cannot be read whole is unknown, with the one-line reason:

* the file read last is gone (rotated away and removed) or is shorter than where we stopped (truncated,
  ``log_truncate_on_rotation``), or another file took its name;
* a file or the directory cannot be read (permissions: opsd must run as the server's OS user, or root);
* more than ``limit`` bytes wait: the rest is read at the next call.

After a problem the next read starts at the end of the newest file: that next window is whole again (when the
directory itself could not be listed, there is no position: the next window is unknown too). A record
PostgreSQL is still writing (no final newline yet) is left for the next read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from opsd.core.queries.logline import SUFFIX, LogFormat, LogPosition, SlowExec, complete_records, parse_record

READ_LIMIT = 64 << 20  # bytes a call reads at most (a snapshot every 5 min: 18 GiB of log a day)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LogRead:
    execs: list[SlowExec]
    position: LogPosition | None  # where the next read starts (None: no log file yet)
    problem: str | None = None  # not None: the window's log was not read whole (why)
    bytes_read: int = 0
    files: list[str] = field(default_factory=list)  # the files read, in order
    behind: bool = False  # stopped at the limit: what is left is read next time (the next window owes it)
    seen: dict[tuple[str, int], int] = field(default_factory=dict)  # (file, inode) -> offset read to


@dataclass(frozen=True)
class _File:
    path: Path
    inode: int
    size: int
    mtime_ns: int

    @property
    def key(self) -> tuple[int, str]:
        return self.mtime_ns, self.path.name


class _Unreadable(Exception):
    pass


def _listing(directory: Path, fmt: LogFormat) -> list[_File]:
    """The directory's files of this format, oldest first."""
    out = []
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise _Unreadable(f"cannot list the log directory {directory}: {e.strerror}") from None
    for name in names:
        if not name.endswith(SUFFIX[fmt]):
            continue
        try:
            st = os.stat(directory / name)
        except OSError:  # removed meanwhile
            continue
        out.append(_File(directory / name, st.st_ino, st.st_size, st.st_mtime_ns))
    return sorted(out, key=lambda f: f.key)


def _end_of_newest(files: list[_File]) -> LogPosition | None:
    return LogPosition(str(files[-1].path), files[-1].inode, files[-1].size) if files else None


def _tracked(files: list[_File], since: LogPosition) -> _File | str:
    """The file read last, or why it cannot be continued."""
    for f in files:
        if str(f.path) == since.file:
            if f.inode != since.inode:
                return f"{since.file} was replaced by a new file of the same name before it was read to the end"
            if f.size < since.offset:
                return f"{since.file} was truncated (log_truncate_on_rotation?) before it was read to the end"
            return f
    return f"{since.file} was rotated away or removed before it was read to the end"


@dataclass
class _Reader:
    fmt: LogFormat
    zone: tzinfo | None
    budget: int
    execs: list[SlowExec] = field(default_factory=list)
    read: int = 0

    def file(self, f: _File, offset: int, last: bool) -> int:
        """Read ``f`` from ``offset`` until its end or the budget: the offset after its last whole record. A
        record being written is left (the last file); a damaged tail of an earlier file is passed over. Past the
        budget, a record already begun is still read to its end (a huge statement cannot stall the log)."""
        try:
            fh = open(f.path, "rb")  # noqa: SIM115 (a with block below; the inode is checked on the open file)
        except OSError as e:
            raise _Unreadable(f"cannot read {f.path}: {e.strerror}") from None
        with fh:
            if os.fstat(fh.fileno()).st_ino != f.inode:
                raise _Unreadable(f"{f.path} was replaced while it was read")
            fh.seek(offset)
            base, pending = offset, b""
            while self.read < self.budget or pending:
                # growing with a long record: linear, not quadratic
                chunk = fh.read(max(min(_CHUNK, self.budget - self.read), len(pending), 1 << 16))
                self.read += len(chunk)
                if not chunk:
                    return base if last else base + len(pending)
                buf = pending + chunk
                records, used = complete_records(buf, self.fmt)
                base, pending = base + used, buf[used:]
                for r in records:
                    if (ex := parse_record(self.fmt, r.decode("utf-8", "replace"), self.zone)) is not None:
                        self.execs.append(ex)
                if self.read >= self.budget and records:  # what follows is read again next time
                    return base
            return base


def _all_read(files: list[_File]) -> dict[tuple[str, int], int]:
    return {(str(f.path), f.inode): f.size for f in files}


def _start(f: _File, seen: Mapping[tuple[str, int], int]) -> int:
    """Where a file after the one read last starts: where it was read to before (a file name reused and appended
    to: log_filename with %a and log_truncate_on_rotation off), else its start (also when it is shorter now)."""
    at = seen.get((str(f.path), f.inode), 0)
    return at if at <= f.size else 0


def read_since(directory: Path, fmt: LogFormat, since: LogPosition | None, *, zone: tzinfo | None = None,
               limit: int = READ_LIMIT, seen: Mapping[tuple[str, int], int] | None = None) -> LogRead:
    """The executions the log timed since ``since``; None: the first read, which starts at the end of the
    newest file (nothing before it is counted). ``seen``: where each file was read to (LogRead.seen of the
    previous read): a file read before is never read again from its start."""
    seen = seen or {}
    try:
        files = _listing(directory, fmt)
    except _Unreadable as e:  # the lines written meanwhile cannot be placed in a window: start afresh later
        return LogRead([], None, str(e))
    if since is None:
        return LogRead([], _end_of_newest(files), seen=_all_read(files))
    tracked = _tracked(files, since)
    if isinstance(tracked, str):
        return LogRead([], _end_of_newest(files), tracked, seen=_all_read(files))
    later = [f for f in files if f.key > tracked.key and f.inode != tracked.inode]
    todo = [(tracked, since.offset), *((f, _start(f, seen)) for f in later)]
    # the files not to be read now are where they were (or, never seen, wholly behind us)
    after = {(str(f.path), f.inode): seen.get((str(f.path), f.inode), f.size) for f in files if f not in later}
    after.update({(str(f.path), f.inode): seen[(str(f.path), f.inode)] for f in later
                  if (str(f.path), f.inode) in seen})
    reader = _Reader(fmt, zone, limit)
    position, done = since, []
    try:
        for i, (f, offset) in enumerate(todo):
            end = reader.file(f, offset, last=i == len(todo) - 1)
            position = LogPosition(str(f.path), f.inode, end)
            after[(str(f.path), f.inode)] = end
            done.append(str(f.path))
            if reader.read >= limit and (left := max(0, f.size - end) + sum(g.size - o for g, o in todo[i + 1:])) > 0:
                return LogRead(reader.execs, position, f"the duration log is {left / 1048576:.1f} MiB behind "
                               f"(at most {limit >> 20} MiB read a snapshot): the rest is counted at the next "
                               "snapshot", reader.read, done, behind=True, seen=after)
    except _Unreadable as e:
        return LogRead([], _end_of_newest(files), str(e), reader.read, done, seen=_all_read(files))
    return LogRead(reader.execs, position, None, reader.read, done, seen=after)
