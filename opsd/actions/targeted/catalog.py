"""A table the live catalog no longer knows (dropped, or dropped and re-created under the same name), named
from a scratch copy recovered to the start of the range: its OID and files then. The copy comes from the copies
room (private port and socket, archive_mode=off, quarantined, under the drill lock), torn down whatever happens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from opsd.actions.copies.partial import plan_partial
from opsd.actions.copies.room import copy_room
from opsd.actions.copies.room import facts as copy_facts
from opsd.actions.restore.plan import Request, make_plan
from opsd.actions.restore.service import load_window, measured_runs
from opsd.actions.targeted.table import scratch_dest
from opsd.context import Context
from opsd.core.relname import FIND, RelName
from opsd.core.timeparse import show
from opsd.core.units import human_bytes
from opsd.core.walfind import Table
from opsd.db.targeted import resolve, table_nodes
from opsd.errors import RefusedError


def catalog_at(ctx: Context, dbname: str, name: RelName, at: datetime, report: Callable[[str], None]) -> Table:
    """The table as the catalog knew it at ``at`` (resolved there as core/relname.py says; no such table then,
    several, or not a table: RefusedError, after the copy is torn down)."""
    s = ctx.settings
    req = Request(target_type="time", target_time=at, dest=scratch_dest(ctx), port=s.drill.port, start=True)
    info, window = load_window(ctx)
    facts = copy_facts(ctx, req)
    plan, part = plan_partial(ctx, make_plan(req, info, window, facts, measured_runs(ctx)), dbname, facts)
    if plan.refused:
        raise RefusedError(f"cannot recover a copy to {show(at)} to read its catalog: " + "; ".join(plan.refusals()))
    assert plan.backup is not None
    what = (f"database {dbname} only ({human_bytes(part.restored_bytes or 0)} of {human_bytes(plan.backup.size)})"
            if part.partial else "the whole cluster")
    report(f"recovering a scratch copy of {what} to {show(at)} (backup {plan.backup.label}) to read the catalog of "
           "then ...")
    with copy_room(ctx, "catalog", req.dest, report, port=req.port) as room:
        restored = room.restore(plan, report)
        room.start(plan, restored, report)
        with room.connect()(dbname) as conn:
            c = resolve(conn, name, dbname, purpose=FIND, where=f"a copy recovered to {show(at)}")
            return table_nodes(conn, c.oid, c.shown)
