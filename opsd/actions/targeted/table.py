"""``opsd restore --table``: recover a scratch copy to the target (the drill's machinery: private port and
socket, archive_mode=off, torn down whatever happens), copy the named tables into a new schema there, dump that
schema, and load it into production in one transaction (or write the dump to a file). The live tables are never
touched; afterwards each recovered table is compared with the live one by primary key."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsd.actions.drill.job import cleanup_stale, refuse_unsafe_scratch, scratch_launch, scratch_root, teardown
from opsd.actions.restore.plan import REFUSE, Plan, Verdict
from opsd.actions.restore.run import start_and_watch
from opsd.actions.restore.service import Launch, restore_files
from opsd.actions.targeted.compare import compare_all
from opsd.adapters import files
from opsd.context import Context
from opsd.core.records.targeted import TableRestoreResult
from opsd.core.units import human_bytes
from opsd.db import tablecopy
from opsd.db.connection import Conn, per_database
from opsd.db.tablecopy import QName
from opsd.db.targeted import SizeRow, schema_exists, table_sizes
from opsd.errors import CommandError, RefusedError, UsageError


@dataclass(frozen=True)
class TableRequest:
    tables: tuple[QName, ...]
    into_schema: str | None
    into_file: Path | None
    dbname: str


@dataclass(frozen=True)
class TablePlan:
    request: TableRequest
    restore: Plan
    sizes: list[SizeRow]
    verdicts: list[Verdict]
    target: str

    @property
    def refused(self) -> bool:
        return self.restore.refused or any(v.level == REFUSE for v in self.verdicts)

    def refusals(self) -> list[str]:
        return self.restore.refusals() + [v.message for v in self.verdicts if v.level == REFUSE]


def check_request(treq: TableRequest) -> None:
    if (treq.into_schema is None) == (treq.into_file is None):
        raise UsageError("give --into-schema NAME (load beside the live tables) or --into-file PATH (a dump)")
    if treq.into_file is None and treq.into_schema is not None and len(treq.into_schema.encode()) > 63:
        raise UsageError(f"--into-schema {treq.into_schema!r}: at most 63 bytes")
    names = [t.table for t in treq.tables]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"two tables named {twice[0]!r}: they cannot share one schema; restore them separately")


def scratch_dest(ctx: Context) -> Path:
    return scratch_root(ctx) / f"drill-table-{ctx.now():%Y%m%dT%H%M%S}"


def table_verdicts(ctx: Context, treq: TableRequest) -> tuple[list[SizeRow], list[Verdict]]:
    """Production's side of the plan: the schema must be new (or the file absent), and the live sizes."""
    out = []
    with per_database(ctx.settings.postgres, ctx.settings.opsd.run_as)(treq.dbname) as conn:
        sizes = table_sizes(conn, [str(t) for t in treq.tables])
        if treq.into_schema and schema_exists(conn, treq.into_schema):
            out.append(Verdict(REFUSE, f"schema {treq.into_schema!r} already exists in {treq.dbname}: opsd loads "
                                       "only into a new schema (choose another --into-schema)"))
    if treq.into_file is not None and (treq.into_file.exists() or treq.into_file.is_symlink()):
        out.append(Verdict(REFUSE, f"{treq.into_file} exists: opsd never overwrites a file (choose a new path)"))
    elif treq.into_file is not None and not treq.into_file.parent.is_dir():
        out.append(Verdict(REFUSE, f"{treq.into_file.parent} is not a directory (create it, or choose another path)"))
    for s in sizes:
        if s.bytes is None:
            out.append(Verdict("warning", f"{s.name} is not in the live catalog: it must exist at the target time "
                                          "(checked on the recovered copy)"))
    return sizes, out


def run_table(ctx: Context, tp: TablePlan, report: Callable[[str], None]) -> TableRestoreResult:
    refuse_unsafe_scratch(ctx)
    user = ctx.settings.opsd.run_as
    files.ensure_dir(scratch_root(ctx), user)
    plan = tp.restore
    with files.exclusive_lock(ctx.lock_dir, "drill", user, "opsd restore --table"):
        cleanup_stale(ctx)
        launch = scratch_launch(ctx)
        try:
            return _recover_and_load(ctx, tp, launch, report)
        finally:
            if plan.request.dest.exists():
                report(f"tearing down {plan.request.dest} ...")
                teardown(ctx, plan.request.dest)


def _recover_and_load(ctx: Context, tp: TablePlan, launch: Launch, report: Callable[[str], None]
                      ) -> TableRestoreResult:
    plan, treq = tp.restore, tp.request
    restored = restore_files(ctx, plan, launch, report)
    recovered = start_and_watch(ctx, plan, launch, restored, report)
    assert launch.socket_dir is not None and plan.backup is not None
    scratch_pg = ctx.settings.postgres.model_copy(update={
        "host": str(launch.socket_dir), "port": plan.request.port,
        "statement_timeout": ctx.settings.drill.verify_statement_timeout})
    schema = treq.into_schema or f"opsd_restored_{ctx.now():%Y%m%d%H%M%S}"
    with per_database(scratch_pg, ctx.settings.opsd.run_as)(treq.dbname) as conn:
        _copy(conn, treq, schema, report)
    dump = launch.work_dir / f"table-restore-{ctx.now():%Y%m%dT%H%M%S}.sql"
    result = TableRestoreResult(
        tables=[str(t) for t in treq.tables], into_schema=treq.into_schema,
        into_file=str(treq.into_file) if treq.into_file else None, backup=plan.backup.label, target=tp.target,
        recovered_at=recovered.last_replayed_at, scratch=str(plan.request.dest),
        restore_seconds=round(restored.restore_seconds, 3), recovery_seconds=recovered.recovery_seconds)
    try:
        _dump(ctx, scratch_pg.host, scratch_pg.port, treq.dbname, schema=schema, dump=dump)
        result = result.model_copy(update={"dump_bytes": dump.stat().st_size})
        if treq.into_file is not None:
            shutil.copyfile(dump, treq.into_file)
            treq.into_file.chmod(0o600)
            report(f"wrote the dump ({human_bytes(dump.stat().st_size)}) to {treq.into_file}; production untouched")
            return result
        t0 = time.monotonic()
        report(f"loading schema {schema} into {treq.dbname} in one transaction ...")
        _load(ctx, treq.dbname, dump)
        result = result.model_copy(update={"load_seconds": round(time.monotonic() - t0, 3)})
    finally:
        dump.unlink(missing_ok=True)
    return result.model_copy(update={"comparisons": compare_all(ctx, treq.dbname, treq.tables, schema)})


def _copy(conn: Conn, treq: TableRequest, schema: str, report: Callable[[str], None]) -> None:
    """On the scratch copy: every table must exist at the target time; each goes into the new schema."""
    missing = [str(t) for t in treq.tables if not tablecopy.exists(conn, t)]
    if missing:
        raise RefusedError(f"table {', '.join(missing)} does not exist at the target time (in {treq.dbname} of the "
                           "recovered copy); production was not touched")
    tablecopy.create_schema(conn, schema)
    for t in treq.tables:
        rows = tablecopy.copy_into(conn, t, QName(schema, t.table))
        report(f"recovered {t}: {rows} row(s)")


def _dump(ctx: Context, host: str, port: int | None, dbname: str, *, schema: str, dump: Path) -> None:
    pg = ctx.settings.postgres
    argv = [str(pg.bin_dir / "pg_dump"), "-h", host, "-p", str(port), "-U", pg.user, "-d", dbname, "-n", schema,
            "--no-owner", "--no-privileges", "--no-publications", "--no-subscriptions", "-f", str(dump)]
    res = ctx.runner.run(argv, timeout=ctx.settings.drill.recovery_timeout.total_seconds(), log_output=False)
    if not res.ok:
        raise CommandError(f"pg_dump of the recovered tables failed: {_last(res.stderr)}", argv=res.argv,
                           returncode=res.returncode)


def _load(ctx: Context, dbname: str, dump: Path) -> None:
    """psql with ON_ERROR_STOP in one transaction: all of it, or nothing (the new schema included)."""
    pg = ctx.settings.postgres
    argv = [str(pg.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", dbname, "-f", str(dump)]
    res = ctx.runner.run(argv, timeout=ctx.settings.drill.recovery_timeout.total_seconds(), log_output=False)
    if not res.ok:
        raise CommandError(f"loading the recovered tables failed, nothing was loaded: {_last(res.stderr)}",
                           argv=res.argv, returncode=res.returncode)


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
