"""Read commits from WAL with pg_waldump (the only trustworthy 'latest recoverable' bound)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

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
