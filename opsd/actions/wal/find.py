"""``opsd wal find``: every committed transaction that changed a table in a time range, from the archived WAL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opsd.actions.wal.scan import Span, plan_span, read
from opsd.adapters.walscan import Progress
from opsd.context import Context
from opsd.core.records.targeted import WalChange
from opsd.core.timeparse import show
from opsd.core.units import format_duration
from opsd.core.wal import Segment, lsn_to_int
from opsd.core.walfind import Event, Table, TxnChange, table_history, unknown_drops
from opsd.db.connection import per_database
from opsd.db.targeted import known_relations, table_nodes
from opsd.errors import OpsdError

UNKNOWN = ("not in the live catalog (dropped, or renamed): shown by file node. To name it, restore a copy to "
           "before this transaction (opsd restore --table ... --before-xid {xid} --into-file ...) and read its "
           "catalog")


@dataclass(frozen=True)
class FindRequest:
    table: str
    dbname: str
    since: datetime
    until: datetime | None
    min_rows: int = 0
    jobs: int = 4


@dataclass(frozen=True)
class Found:
    changes: list[WalChange]
    span: Span
    seconds: float
    table_known: bool


def find(ctx: Context, req: FindRequest, report: Callable[[str], None]) -> Found:
    import time

    connect = per_database(ctx.settings.postgres, ctx.settings.opsd.run_as)
    with connect(req.dbname) as conn:
        table = table_nodes(conn, req.table)
        known = known_relations(conn) if table is None else None
    sp = plan_span(ctx, req.since, req.until)
    if not sp.segments:
        have = (f"the archive has WAL from {show(sp.archived_from)} to {show(sp.archived_to)}"
                if sp.archived_from and sp.archived_to else "the archive has no WAL")
        raise OpsdError(f"no archived WAL between {show(req.since)} and {show(req.until) if req.until else 'now'}: "
                        f"{have}")
    report(f"reading {len(sp.segments)} WAL segment(s) {sp.segments[0].name} .. {sp.segments[-1].name} from the "
           f"repository ({req.jobs} in parallel)")
    t0 = time.monotonic()
    events = read(ctx, sp.segments, jobs=req.jobs, report=lambda p: report(_progress(p)))
    secs = time.monotonic() - t0
    if table is not None:
        changes = [_view(req.table, t, sp.segments) for t in table_history(events, table)]
    else:
        db, oids = known if known is not None else (0, set())
        changes = [_view(None, t, sp.segments, UNKNOWN.format(xid=t.xid)) for t in unknown_drops(events, db, oids)]
    changes = [c for c in changes if _in_range(c, req) and (c.inserts + c.updates + c.deletes >= req.min_rows
                                                            or c.truncated or c.dropped)]
    return Found(changes, sp, secs, table is not None)


def _progress(p: Progress) -> str:
    return (f"segment {p.done}/{p.total} {p.segment} ({p.rate:.1f} MiB/s, "
            f"{format_duration(p.seconds)} elapsed)")


def _in_range(c: WalChange, req: FindRequest) -> bool:
    return c.commit_time >= req.since and (req.until is None or c.commit_time <= req.until)


def _timeline(lsn: str, path: list[Segment]) -> int:
    seg = lsn_to_int(lsn) // (16 * 1024 * 1024)
    return next((s.timeline for s in reversed(path) if s.segno <= seg), path[0].timeline)


def _view(name: str | None, t: TxnChange, path: list[Segment], note: str | None = None) -> WalChange:
    return WalChange(table=name, xid=t.xid, commit_time=t.commit_time, lsn=t.lsn, timeline=_timeline(t.lsn, path),
                     inserts=t.inserts, updates=t.updates, deletes=t.deletes, truncated=t.truncated,
                     dropped=t.dropped, rewritten=t.rewritten, subxacts=list(t.subxacts), file_nodes=t.file_nodes,
                     note=note)


def events_between(ctx: Context, since: datetime, until: datetime | None, report: Callable[[str], None],
                   jobs: int = 4) -> tuple[list[Event], Span]:
    """The decoded WAL of a range (for --before-xid: where a transaction ended)."""
    sp = plan_span(ctx, since, until)
    if not sp.segments:
        return [], sp
    return read(ctx, sp.segments, jobs=jobs, report=lambda p: report(_progress(p)),
                rmgrs=("Transaction", "XLOG")), sp


def lookup_table(ctx: Context, dbname: str, name: str) -> Table | None:
    with per_database(ctx.settings.postgres, ctx.settings.opsd.run_as)(dbname) as conn:
        return table_nodes(conn, name)
