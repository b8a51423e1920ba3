"""Which copies of production this host runs, from their records (never guessed from directory names alone):
running ones, kept ones, and leftovers whose job is gone or whose keep expired; stopping and removing those."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from opsd.actions.restore.tablespaces import side_root
from opsd.adapters import files, processes
from opsd.adapters.stores.copies import CopyStore
from opsd.context import Context
from opsd.core.records.copies import CopyRecord, CopyVerdict, judge_copy, unrecorded
from opsd.errors import OpsdError
from opsd.log import get_logger

PREFIX = "drill-"  # every copy's directory under the scratch root (drill-<stanza>-*, drill-table-*, ...)


def store(ctx: Context) -> CopyStore:
    return CopyStore(ctx.history.db)


def scratch_root(ctx: Context) -> Path:
    return ctx.settings.scratch_dir


def record(ctx: Context, rec: CopyRecord) -> None:
    """Write the record before the copy exists: a copy nobody could find after a crash is not made."""
    try:
        store(ctx).put(rec)
    except OpsdError as e:
        raise OpsdError(f"cannot record the copy {rec.id} in the state file, so it is not made: {e}",
                        hint=e.hint) from None


def forget(ctx: Context, rec: CopyRecord) -> None:
    try:
        store(ctx).remove(rec.id)
    except OpsdError as e:  # the next check names it as an orphan whose directory is gone: cleaned then
        get_logger().error("copy.unrecord_failed", copy=rec.id, error=str(e))


def verdicts(ctx: Context) -> list[CopyVerdict]:
    """Every copy this host has: recorded ones judged by their job's process, and scratch directories no
    record names (orphans). A record of another host's state file is judged by nothing but its expiry."""
    recs = store(ctx).all()
    here = socket.gethostname()
    now = ctx.now()
    out = [judge_copy(r, r.host == here and processes.same_process(r.pid, r.pid_started), now) for r in recs]
    known = {p.name for r in recs for p in (Path(r.directory), side_root(Path(r.directory)))}
    out += [unrecorded(str(d)) for d in files.scratch_instances(scratch_root(ctx), PREFIX) if d.name not in known]
    return out


def remove_copy(ctx: Context, rec: CopyRecord) -> None:
    """Stop the copy's server (only a postmaster that really runs in its directory), kill what still writes
    into it (an orphaned pgBackRest restore), remove its files, then its record."""
    dest = Path(rec.directory)
    processes.stop_postmaster(dest)
    processes.kill_mentioning(str(dest))
    for d in (dest, side_root(dest)):  # its tablespaces live beside it (restore/tablespaces.py)
        if d.exists() or d.is_symlink():
            files.remove_scratch(d, scratch_root(ctx), PREFIX)
    forget(ctx, rec)


def clean(ctx: Context, *, everything: bool, report: Callable[[str], None]) -> list[CopyVerdict]:
    """Remove the leftovers (orphaned or expired copies); ``everything``: kept ones too. Never a copy whose job
    is running. The caller holds the drill lock."""
    gone = []
    for v in verdicts(ctx):
        if v.leftover or (everything and v.state == "kept"):
            report(f"removing {v.record.directory} ({v.state}: {v.why})")
            remove_copy(ctx, v.record)
            gone.append(v)
    if gone:
        get_logger().warning("copy.removed", copies=[f"{v.record.id} ({v.state})" for v in gone])
    return gone


def used_ports(ctx: Context) -> set[int]:
    return {v.record.port for v in verdicts(ctx) if v.record.port}


def stop_mine(ctx: Context) -> None:
    """Immediate shutdown of the copies this process made and does not keep (the daemon stopping)."""
    me = os.getpid()
    for rec in store(ctx).all():
        if rec.pid == me and not rec.kept:
            processes.stop_postmaster(Path(rec.directory))
