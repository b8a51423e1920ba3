"""A table the live catalog no longer knows (dropped, or dropped and re-created under the same name), named
from a scratch copy recovered to the start of the range: its OID and files then. The copy is the drill's
(private port and socket, archive_mode=off, under the drill lock) and is torn down whatever happens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from opsd.actions.drill.job import cleanup_stale, refuse_unsafe_scratch, scratch_launch, scratch_root, teardown
from opsd.actions.restore.plan import Request, make_plan
from opsd.actions.restore.run import start_and_watch
from opsd.actions.restore.service import gather_facts, load_window, measured_runs, restore_files
from opsd.actions.targeted.table import scratch_dest
from opsd.adapters import files
from opsd.context import Context
from opsd.core.timeparse import show
from opsd.core.walfind import Table
from opsd.db.connection import per_database
from opsd.db.targeted import table_nodes
from opsd.errors import RefusedError


def catalog_at(ctx: Context, dbname: str, name: str, at: datetime, report: Callable[[str], None]) -> Table | None:
    """The table as the catalog knew it at ``at`` (None: it did not exist then)."""
    s = ctx.settings
    req = Request(target_type="time", target_time=at, dest=scratch_dest(ctx), port=s.drill.port, start=True)
    info, window = load_window(ctx)
    plan = make_plan(req, info, window, gather_facts(ctx, req), measured_runs(ctx))
    if plan.refused:
        raise RefusedError(f"cannot recover a copy to {show(at)} to read its catalog: " + "; ".join(plan.refusals()))
    assert plan.backup is not None
    report(f"recovering a scratch copy to {show(at)} (backup {plan.backup.label}) to read the catalog of then ...")
    refuse_unsafe_scratch(ctx)
    files.ensure_dir(scratch_root(ctx), s.opsd.run_as)
    with files.exclusive_lock(ctx.lock_dir, "drill", s.opsd.run_as, "opsd wal find --catalog-from-copy"):
        cleanup_stale(ctx)
        launch = scratch_launch(ctx)
        try:
            restored = restore_files(ctx, plan, launch, report)
            start_and_watch(ctx, plan, launch, restored, report)
            assert launch.socket_dir is not None
            scratch_pg = s.postgres.model_copy(update={"host": str(launch.socket_dir), "port": s.drill.port})
            with per_database(scratch_pg, s.opsd.run_as)(dbname) as conn:
                return table_nodes(conn, name)
        finally:
            if req.dest.exists():
                report(f"tearing down {req.dest} ...")
                teardown(ctx, req.dest)
