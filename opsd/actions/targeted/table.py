"""``opsd restore --table``: recover a scratch copy to the target (the drill's machinery: private port and
socket, archive_mode=off, torn down whatever happens), copy the named tables into a new schema there as their
owner (sidecopy.py), dump those tables, and load them into production in one transaction as their owner (or
write the dump, with the same load header, to a new file). The live tables are never touched; afterwards each
recovered table is compared with the live one by primary key, in short key ranges (compare.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from opsd.actions.copies import registry
from opsd.actions.copies.partial import Partial
from opsd.actions.copies.room import Room, copy_room
from opsd.actions.restore.plan import REFUSE, Plan, Verdict
from opsd.actions.targeted.compare import compare_all
from opsd.actions.targeted.owners import check_identifier, kind_verdicts, load_as, load_verdicts, stripped_items
from opsd.actions.targeted.sidecopy import SideCopy, make_copies
from opsd.adapters.outfile import write_new
from opsd.context import Context
from opsd.core.records.targeted import TableRestoreResult
from opsd.core.relname import RESTORE, not_found, pick
from opsd.core.units import human_bytes
from opsd.db import tablecopy
from opsd.db.connection import Conn, per_database
from opsd.db.tablecopy import QName
from opsd.db.targeted import SizeRow, candidates, domain_columns, owner_code, schema_exists, table_facts, table_sizes
from opsd.errors import CommandError, RefusedError, UsageError


@dataclass(frozen=True)
class TableRequest:
    tables: tuple[QName, ...]
    into_schema: str | None
    into_file: Path | None
    dbname: str
    xids: tuple[int, ...] = ()  # the known bad transaction (--before-xid) and its subtransactions


@dataclass(frozen=True)
class TablePlan:
    request: TableRequest
    restore: Plan
    sizes: list[SizeRow]
    verdicts: list[Verdict]
    target: str
    partial: Partial | None = None  # what the scratch copy restores (None: the whole cluster)

    @property
    def scratch_bytes(self) -> int | None:
        """What the scratch copy takes: the files restored and the WAL replayed (a partial copy), or the backup."""
        p, b = self.partial, self.restore.backup
        if p is not None and p.partial and p.restored_bytes is not None:
            return p.restored_bytes + self.restore.wal_bytes
        return b.size if b is not None else None

    @property
    def refused(self) -> bool:
        return self.restore.refused or any(v.level == REFUSE for v in self.verdicts)

    def refusals(self) -> list[str]:
        return self.restore.refusals() + [v.message for v in self.verdicts if v.level == REFUSE]


def check_request(treq: TableRequest) -> None:
    if (treq.into_schema is None) == (treq.into_file is None):
        raise UsageError("give --into-schema NAME (load beside the live tables) or --into-file PATH (a dump)")
    if treq.into_schema is not None:
        check_identifier(treq.into_schema, "--into-schema")
    names = [t.table for t in treq.tables]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"two tables named {twice[0]!r}: they cannot share one schema; restore them separately")


def resolve_live(ctx: Context, treq: TableRequest) -> TableRequest:
    """Each ``--table`` resolved on the live catalog (core/relname.py): several relations, one that is not a
    table, or a quoted name whose case matches none of the live ones, refused here (exit 5) before any WAL is
    read or anything restored. A name the live catalog does not know in any case stays as given: it may be a
    table dropped since, resolved on the recovered copy (sidecopy.py)."""
    out = []
    with per_database(ctx.settings.postgres, ctx.settings.opsd.run_as)(treq.dbname) as conn:
        for t in treq.tables:
            found = candidates(conn, t.given())
            c = pick(t.given(), found, treq.dbname, purpose=RESTORE)
            if c is None and found:
                raise RefusedError(not_found(t.given(), found, treq.dbname, "the live catalog"))
            out.append(t if c is None else QName(c.schema, c.name))
    resolved = replace(treq, tables=tuple(out))
    check_request(resolved)
    return resolved


def scratch_dest(ctx: Context) -> Path:
    return registry.scratch_root(ctx) / f"drill-table-{ctx.now():%Y%m%dT%H%M%S}"


def table_verdicts(ctx: Context, treq: TableRequest) -> tuple[list[SizeRow], list[Verdict]]:
    """Production's side of the plan: the schema must be new (or the file absent), the live sizes, the kind of
    each table (temporary: refused; unlogged: comes back empty) and whose rights the copies are made with."""
    out = []
    with per_database(ctx.settings.postgres, ctx.settings.opsd.run_as)(treq.dbname) as conn:
        tablecopy.pin(conn)
        sizes = table_sizes(conn, [tablecopy.regclass(conn, t) for t in treq.tables])
        if treq.into_schema and schema_exists(conn, treq.into_schema):
            out.append(Verdict(REFUSE, f"schema {treq.into_schema!r} already exists in {treq.dbname}: opsd loads "
                                       "only into a new schema (choose another --into-schema)"))
        out += _owner_verdicts(conn, treq)
    if treq.into_file is not None and (treq.into_file.exists() or treq.into_file.is_symlink()):
        out.append(Verdict(REFUSE, f"{treq.into_file} exists: opsd never overwrites a file (choose a new path)"))
    elif treq.into_file is not None and not treq.into_file.parent.is_dir():
        out.append(Verdict(REFUSE, f"{treq.into_file.parent} is not a directory (create it, or choose another path)"))
    for s in sizes:
        if s.bytes is None:
            out.append(Verdict("warning", f"{s.name} is not in the live catalog: it must exist at the target time "
                                          "(checked on the recovered copy)"))
    return sizes, out


def _owner_verdicts(conn: Conn, treq: TableRequest) -> list[Verdict]:
    """From the live catalog (the copy's, at the target time, decides): kinds, and whose rights."""
    facts = table_facts(conn, [tablecopy.regclass(conn, t) for t in treq.tables])
    if not facts:
        return []
    la = load_as(facts)
    dropped = [] if not la.stripped else [
        item for f in facts for item in stripped_items(f.name, owner_code(conn, f.name), domain_columns(conn, f.name))]
    return kind_verdicts(facts) + load_verdicts(la, dropped)


def run_table(ctx: Context, tp: TablePlan, report: Callable[[str], None]) -> TableRestoreResult:
    plan = tp.restore
    with copy_room(ctx, "table", plan.request.dest, report, port=plan.request.port) as room:
        return _recover_and_load(ctx, tp, room, report)


def _recover_and_load(ctx: Context, tp: TablePlan, room: Room, report: Callable[[str], None]
                      ) -> TableRestoreResult:
    plan, treq = tp.restore, tp.request
    restored = room.restore(plan, report)
    recovered = room.start(plan, restored, report)
    assert room.launch.socket_dir is not None and plan.backup is not None
    schema = treq.into_schema or f"opsd_restored_{ctx.now():%Y%m%d%H%M%S}"
    with room.connect(ctx.settings.drill.verify_statement_timeout)(treq.dbname) as conn:
        side = make_copies(conn, treq.tables, schema, treq.xids, report, dbname=treq.dbname)
        patterns = [tablecopy.pattern(conn, t) for t in side.dumped]
    dump = room.launch.work_dir / f"table-restore-{ctx.now():%Y%m%dT%H%M%S}.sql"
    result = _result(tp, side, recovered.last_replayed_at, restored.restore_seconds, recovered.recovery_seconds)
    try:
        _dump(ctx, str(room.launch.socket_dir), room.port, treq.dbname, patterns=patterns, dump=dump)
        result = result.model_copy(update={"dump_bytes": dump.stat().st_size})
        if treq.into_file is not None:
            size = write_new(treq.into_file, _file_header(side, treq.dbname), dump, FOOTER)
            report(f"wrote the dump ({human_bytes(size)}) to {treq.into_file}; production untouched")
            return result
        t0 = time.monotonic()
        who = f"as {side.load_as.owner}" if side.load_as.owner else "without owner code"
        report(f"loading schema {schema} into {treq.dbname} in one transaction, {who} ...")
        _load(ctx, treq.dbname, side.header, dump)
        result = result.model_copy(update={"load_seconds": round(time.monotonic() - t0, 3)})
    finally:
        dump.unlink(missing_ok=True)
    report("comparing with the live tables, in key ranges ...")
    return result.model_copy(update={"comparisons": compare_all(ctx, treq.dbname, tuple(side.tables), side.schema,
                                                                treq.xids)})


def _result(tp: TablePlan, side: SideCopy, at: datetime | None, restore_seconds: float, recovery_seconds: float | None
            ) -> TableRestoreResult:
    plan, treq = tp.restore, tp.request
    assert plan.backup is not None
    return TableRestoreResult(
        tables=[str(t) for t in side.tables], into_schema=treq.into_schema,
        into_file=str(treq.into_file) if treq.into_file else None, backup=plan.backup.label, target=tp.target,
        recovered_at=at, scratch=str(plan.request.dest), restore_seconds=round(restore_seconds, 3),
        recovery_seconds=recovery_seconds, before_xid=treq.xids[0] if treq.xids else None,
        created_as=side.load_as.owner, not_as_owner=side.load_as.why, dropped=side.dropped, warnings=side.warnings)


FOOTER = "RESET ROLE;"


def _file_header(side: SideCopy, dbname: str) -> str:
    who = (f"as {side.load_as.owner}, the tables' owner (SET ROLE below): load it as a role that may SET ROLE to "
           "it" if side.load_as.owner else f"without owner code ({side.load_as.why})")
    return (f"-- opsd restore --table: {', '.join(str(t) for t in side.dumped)} from database {dbname}, into the "
            f"new schema below,\n-- {who}. Load in one transaction: psql -X -1 -v ON_ERROR_STOP=1 -f FILE\n"
            + side.header)


def _dump(ctx: Context, host: str, port: int | None, dbname: str, *, patterns: list[str], dump: Path) -> None:
    """The copies (-t with each name double-quoted: matched literally, exactly one table each), no schema, owner
    or grants: the load header makes the schema and takes the owner's role."""
    pg = ctx.settings.postgres
    tables = [a for p in patterns for a in ("-t", p)]
    argv = [str(pg.bin_dir / "pg_dump"), "-h", host, "-p", str(port), "-U", pg.user, "-d", dbname, *tables,
            "--no-owner", "--no-privileges", "--no-publications", "--no-subscriptions", "--no-security-labels",
            "-f", str(dump)]
    res = ctx.runner.run(argv, timeout=ctx.settings.drill.recovery_timeout.total_seconds(), log_output=False)
    if not res.ok:
        raise CommandError(f"pg_dump of the recovered tables failed: {_last(res.stderr)}", argv=res.argv,
                           returncode=res.returncode)


def _load(ctx: Context, dbname: str, header: str, dump: Path) -> None:
    """psql with ON_ERROR_STOP in one transaction: the header (search_path, the schema made for the owner, SET
    ROLE owner), the dump, RESET ROLE. All of it, or nothing (the new schema included)."""
    pg = ctx.settings.postgres
    argv = [str(pg.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", dbname, "-c", header, "-f", str(dump),
            "-c", FOOTER]
    res = ctx.runner.run(argv, timeout=ctx.settings.drill.recovery_timeout.total_seconds(), log_output=False)
    if not res.ok:
        raise CommandError(f"loading the recovered tables failed, nothing was loaded: {_last(res.stderr)}",
                           argv=res.argv, returncode=res.returncode)


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
