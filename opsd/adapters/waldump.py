"""Read commit times from WAL with pg_waldump (the only trustworthy 'latest recoverable' bound)."""

from __future__ import annotations

import re
from datetime import datetime

_COMMIT_ONLY = re.compile(r"desc: COMMIT(?:_PREPARED)? (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) ([A-Za-z]+)")


def last_commit_time(waldump_output: str) -> datetime | None:
    """The timestamp of the last COMMIT record in pg_waldump's output (run with TZ=UTC). A commit of DDL
    carries more after the zone (``... UTC; inval msgs: ...``)."""
    last = None
    for line in waldump_output.splitlines():
        m = _COMMIT_ONLY.search(line)
        if m:
            last = m
    if last is None:
        return None
    stamp, zone = last.groups()
    if zone not in ("UTC", "GMT"):
        raise ValueError(f"pg_waldump printed a commit time in {zone!r}; run it with TZ=UTC")
    return datetime.fromisoformat(stamp + "+00:00")
