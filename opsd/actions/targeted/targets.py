"""Targets found in the archived WAL: a named restore point (--to-name) and the commit of a transaction
(--before-xid). Each is refused (exit 5, nothing touched) when the WAL cannot place it exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from opsd.actions.restore.plan import Request
from opsd.actions.wal.find import end_between
from opsd.actions.wal.points import listing
from opsd.actions.wal.scan import timeline_at
from opsd.context import Context
from opsd.core.records.targeted import RestorePoint
from opsd.core.timeparse import show
from opsd.core.walfind import End
from opsd.errors import RefusedError

LOOKBACK = timedelta(hours=24)


def resolve_name(ctx: Context, name: str, since: datetime | None, report: Callable[[str], None]) -> RestorePoint:
    found, _read = listing(ctx, since or ctx.now() - LOOKBACK, report)
    same = [p for p in found if p.name == name]
    if not same:
        known = ", ".join(sorted({p.name for p in found})[:10]) or "none"
        raise RefusedError(f"unknown restore point {name!r} (known: {known})",
                           hint="a point created outside opsd more than a day ago: opsd restore-point list --since "
                                "TIME finds it in the WAL (and remembers it)")
    if len(same) > 1:
        where = ", ".join(f"{p.lsn} on timeline {p.timeline}" for p in same)
        raise RefusedError(f"restore point {name!r} exists {len(same)} times ({where}): PostgreSQL would stop at the "
                           "first one it meets; restore with --to-lsn LSN instead")
    p = same[0]
    if not p.recoverable:
        raise RefusedError(f"restore point {name!r} ({p.lsn}) is no longer recoverable: {p.why}")
    return p


@dataclass(frozen=True)
class XidEnd:
    end: End
    timeline: int


def resolve_xid(ctx: Context, xid: int, since: datetime | None, report: Callable[[str], None]) -> XidEnd:
    """The commit of top-level transaction ``xid`` in the WAL archived since ``since`` (default: a day ago)."""
    start = since or ctx.now() - LOOKBACK
    end, sp = end_between(ctx, xid, start, report)
    if end is None:
        raise RefusedError(f"transaction {xid} did not end in the WAL archived since {show(start)}: a wrong xid, "
                           "one still running, or an older one (give --since)")
    if end.xid != xid:
        raise RefusedError(f"transaction {xid} is a subtransaction of {end.xid}: recovery stops at top-level "
                           f"transactions; use --before-xid {end.xid}")
    if not end.committed:
        raise RefusedError(f"transaction {xid} was rolled back ({show(end.time)}): it changed nothing to undo")
    return XidEnd(end, timeline_at(end.lsn, sp.segments))


def resolve(ctx: Context, req: Request, since: datetime | None, report: Callable[[str], None]) -> Request:
    """A name or --before-xid target placed in the archived WAL: where recovery stops, on which timeline."""
    if req.target_type == "name" and req.target_value:
        p = resolve_name(ctx, req.target_value, since, report)
        return replace(req, stop_lsn=p.lsn, target_timeline=req.target_timeline or str(p.timeline))
    if req.target_type == "xid" and req.exclusive and req.target_value:
        x = resolve_xid(ctx, int(req.target_value), since, report)
        return replace(req, stop_lsn=x.end.lsn, target_timeline=req.target_timeline or str(x.timeline))
    return req
