"""``opsd wal find``: every committed transaction that changed a table in a time range, from the archived WAL."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opsd.actions.wal.scan import Span, decoders, plan_span, read, timeline_at
from opsd.adapters.walscan import Progress
from opsd.context import Context
from opsd.core.records.targeted import WalChange
from opsd.core.relname import FIND, RelName
from opsd.core.timeparse import show
from opsd.core.units import format_duration
from opsd.core.wal import Segment
from opsd.core.walfind import Collector, End, EndFinder, Keep, Table, TxnChange, node_name, table_history
from opsd.db.connection import per_database
from opsd.db.targeted import Known, known_relations, resolve, table_nodes
from opsd.errors import OpsdError, RefusedError, RepositoryError

DROPPED = "a table dropped or renamed since: --catalog-from-copy names it from a copy recovered to --since"


@dataclass(frozen=True)
class FindRequest:
    table: RelName
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
    table: Table  # what was searched: the relation and its file nodes
    since: datetime
    until: datetime | None
    stopped: str | None = None  # why the read ended early (a segment the repository lacks): the rest is unknown

    def searched(self) -> str:
        """What was read, for a search that found nothing (not an error: the table resolved)."""
        segs = self.span.segments
        nodes = ", ".join(node_name(n) for n in sorted(self.table.nodes))
        return (f"searched {self.table.name} (OID {self.table.oid}, file node(s) {nodes}) for transactions "
                f"committed from {show(self.since)} to {show(self.until) if self.until else 'the end of the archive'}"
                f" in {len(segs)} WAL segment(s) {segs[0].name} .. {segs[-1].name}")


def find(ctx: Context, req: FindRequest, report: Callable[[str], None], at_start: Table | None = None) -> Found:
    """``at_start``: the table as a copy recovered to ``req.since`` knew it (followed forward); without it, as
    the live catalog knows it now (followed back through each rewrite)."""
    connect = per_database(ctx.settings.postgres, ctx.settings.opsd.run_as)
    with connect(req.dbname) as conn:
        if at_start is None:
            c = resolve(conn, req.table, req.dbname, purpose=FIND, also=DROPPED)
            table = table_nodes(conn, c.oid, c.shown)
        else:
            table = at_start
        known = known_relations(conn)
    if not table.nodes:
        raise RefusedError(f"{table.name} has no files of its own in {req.dbname} (no partition with storage): "
                           "nothing to search")
    sp = plan_span(ctx, req.since, req.until)
    if not sp.segments:
        have = (f"the archive has WAL from {show(sp.archived_from)} to {show(sp.archived_to)}"
                if sp.archived_from and sp.archived_to else "the archive has no WAL")
        raise OpsdError(f"no archived WAL between {show(req.since)} and {show(req.until) if req.until else 'now'}: "
                        f"{have}")
    report(f"reading {len(sp.segments)} WAL segment(s) {sp.segments[0].name} .. {sp.segments[-1].name} from the "
           f"repository ({req.jobs} at once, decoded by {decoders(req.jobs)} processes)")
    # from a copy: every file of the database is followed (the table's files after a rewrite may be live ones)
    keep = _keep(table, known) if at_start is None else Keep(database=known.database)
    seen = Collector(keep, table.nodes if at_start is None else frozenset(),
                     lambda e, rows: rows < req.min_rows or not _in_range(e.time, req))
    t0, stopped = time.monotonic(), None
    try:
        read(ctx, sp.segments, seen.add, jobs=req.jobs, report=lambda p: report(_progress(p)), keep=keep)
    except RepositoryError as e:  # what was read before it is still an answer: given, with the error after it
        stopped = str(e)
    secs = time.monotonic() - t0
    changes = [_view(table.name, t, sp.segments) for t in table_history(seen, table, forward=at_start is not None)]
    changes = [c for c in changes if _in_range(c.commit_time, req)
               and (c.inserts + c.updates + c.deletes >= req.min_rows or c.truncated or c.dropped)]
    return Found(changes, sp, secs, table, req.since, req.until, stopped)


def _keep(table: Table, known: Known) -> Keep:
    """The file nodes worth counting: the table's own, and in its database those no live relation has (the
    table's files before a rewrite). Every other live table's changes are skipped as they stream by."""
    return Keep(table.nodes, known.database, frozenset(known.filenodes))


def _progress(p: Progress) -> str:
    return (f"segment {p.done}/{p.total} {p.segment} ({p.rate:.1f} MiB/s, "
            f"{format_duration(p.seconds)} elapsed)")


def _in_range(t: datetime, req: FindRequest) -> bool:
    return t >= req.since and (req.until is None or t <= req.until)


def _view(name: str, t: TxnChange, path: list[Segment], note: str | None = None) -> WalChange:
    return WalChange(table=name, xid=t.xid, commit_time=t.commit_time, lsn=t.lsn, timeline=timeline_at(t.lsn, path),
                     inserts=t.inserts, updates=t.updates, deletes=t.deletes, truncated=t.truncated,
                     dropped=t.dropped, rewritten=t.rewritten, subxacts=list(t.subxacts), file_nodes=t.file_nodes,
                     note=note)


def end_between(ctx: Context, xid: int, since: datetime, report: Callable[[str], None], *, jobs: int = 4
                ) -> tuple[End | None, Span]:
    """Where transaction ``xid`` ended, in the WAL archived since ``since`` (read until it is found)."""
    sp = plan_span(ctx, since, None)
    finder = EndFinder(xid)
    if sp.segments:
        read(ctx, sp.segments, finder.add, jobs=jobs, report=lambda p: report(_progress(p)),
             rmgrs=("Transaction",), enough=lambda: finder.found is not None)
    return finder.found, sp

