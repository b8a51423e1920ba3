"""After the command: the checks on the copy (invalid indexes, constraints left NOT VALID, amcheck of what the
migration touched, the operator's smoke queries), the rollback's comparison with the state before, the
hazards and the production impact, and the verdict with every reason for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opsd.actions.copies.room import Room
from opsd.actions.drill.verify import smoke
from opsd.actions.rehearse import observe
from opsd.actions.rehearse.gate import Ran
from opsd.actions.rehearse.state import Before, Where, compare_rows, dump_schema
from opsd.context import Context
from opsd.core.records.checks import OK
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import BackupResult
from opsd.core.records.rehearse import Check, Phase, RehearsalResult, Rewrite, Statement, TableDiff
from opsd.core.rehearse import hazards as hz
from opsd.core.rehearse.compare import removed_or_added, schema_diff
from opsd.core.rehearse.locks import Span
from opsd.db import rehearse as db
from opsd.db.connection import Conn
from opsd.db.drill_reads import amcheck_rows, amcheck_schema
from opsd.db.queries import CheckedRow, CorruptionRow, execute_script
from opsd.errors import DatabaseError, OpsdError

MAX_STATEMENTS = 500
Report = Callable[[str], None]


@dataclass
class Phased:
    phase: Phase
    ran: Ran
    statements: list[Statement]
    spans: list[Span]
    problem: str | None  # the locks could not be sampled
    production_unchecked: str | None


@dataclass
class Measured:
    before: db.Snapshot
    migrate: Phased
    saved: Before | None = None
    after: db.Snapshot | None = None
    rollback: Phased | None = None


def after_checks(ctx: Context, room: Room, m: Measured, dbname: str, report: Report) -> list[Check]:
    assert m.after is not None
    out = []
    bad = [r.name for r in m.after.relations.values() if r.kind == "i" and not r.valid]
    out.append(Check(name="indexes", status="failed" if bad else "ok",
                     message=f"invalid index(es) left behind: {', '.join(bad)} (drop and build again)" if bad
                     else "no invalid index"))
    loose = [f"{c.name} on {c.table_name}" for c in m.after.constraints.values() if not c.validated]
    out.append(Check(name="constraints", status="warning" if loose else "ok",
                     message=f"not validated yet: {', '.join(loose)} (ALTER TABLE ... VALIDATE CONSTRAINT)" if loose
                     else "every constraint validated"))
    locks = observe.locks(m.migrate.spans, m.before, "migrate", _skip(ctx))
    touched = observe.touched(m.before, m.after, locks)
    report(f"amcheck of the {len(touched)} relation(s) the migration touched ...")
    with room.connect(ctx.settings.drill.verify_statement_timeout)(dbname) as conn:
        out.append(_amcheck(conn, touched, {r.name: r for r in m.after.relations.values()}))
    restored = room.restored_dbs
    queries = [q for q in ctx.settings.drill.smoke_queries if restored is None or q.dbname in restored]
    for r in smoke(room.connect(search_path=None), queries):
        out.append(Check(name=r.name, status="ok" if r.status == OK else "failed", message=r.message))
    out += [Check(name=f"smoke.{q.name}", status="warning", message=f"not run: database {q.dbname} is not restored "
                                                                     "in this copy")
            for q in ctx.settings.drill.smoke_queries if restored is not None and q.dbname not in restored]
    return out


def _amcheck(conn: Conn, names: list[str], rels: dict[str, db.RelationRow]) -> Check:
    try:
        execute_script(conn, "amcheck_install")
        schema = amcheck_schema(conn)
    except DatabaseError as e:
        return Check(name="amcheck", status="warning", message=f"not checked: amcheck cannot be installed ({e})")
    assert schema is not None
    problems, checked, skipped = [], 0, []
    for name in names:
        r = rels[name]
        if r.kind == "i" and r.am != "btree":
            skipped.append(name)
            continue
        try:
            if r.kind == "i":
                amcheck_rows(conn, "amcheck_btree", schema, name, CheckedRow)
            elif bad := amcheck_rows(conn, "amcheck_heap", schema, name, CorruptionRow):
                problems.append(f"{name}: block {bad[0].blkno}: {bad[0].msg}")
            checked += 1
        except DatabaseError as e:
            problems.append(f"{name}: {e}")
    tail = f"; {len(skipped)} non-B-tree index(es) not checked by it" if skipped else ""
    if problems:
        return Check(name="amcheck", status="failed", message=f"{len(problems)} of {checked} relation(s) corrupt or "
                                                              f"not checkable: {problems[0]}{tail}")
    return Check(name="amcheck", status="ok", message=f"{checked} relation(s) the migration touched are sound{tail}")


def conclude(ctx: Context, base: RehearsalResult, m: Measured, checks: list[Check], *, room: Room,
             where: Where) -> RehearsalResult:
    after = m.after
    assert after is not None
    skip = _skip(ctx)
    locks = observe.locks(m.migrate.spans, m.before, "migrate", skip)
    sent = m.migrate.statements + (m.rollback.statements if m.rollback else [])
    rewrites = observe.rewrites(m.before, after)
    indexes = observe.indexes(m.before, after, sent, skip)
    constraints = observe.constraints(m.before, after, sent, skip)
    diff, tables = None, list[TableDiff]()
    if m.rollback is not None:
        locks += observe.locks(m.rollback.spans, m.before, "rollback", skip)
        diff, tables = _rollback(ctx, m, room, where, rewrites)
    limits = hz.Limits(lock_budget=ctx.settings.rehearse.lock_budget.total_seconds(),
                       large_table=int(ctx.settings.rehearse.large_table),
                       long_statement=ctx.settings.rehearse.long_statement.total_seconds())
    found = hz.hazards(locks, rewrites, indexes, constraints=constraints, statements=sent, limits=limits)
    failures = _failures(m, checks, diff, tables)
    phased = [m.migrate] + ([m.rollback] if m.rollback else [])
    checks = checks + [Check(name=f"production.{p.phase.name}", status="warning",
                             message=f"not checked whether the {p.phase.name} reached production: "
                                     f"{p.production_unchecked}") for p in phased if p.production_unchecked]
    impact = [*hz.impact(locks), hz.wal_impact(m.migrate.phase.wal_bytes, _push_rate(ctx), _replay_rate(ctx))]
    phases = [m.migrate.phase] + ([m.rollback.phase] if m.rollback else [])
    return base.model_copy(update={
        "verdict": hz.verdict(failures, found), "phases": phases, "statements": sent[:MAX_STATEMENTS],
        "statements_dropped": max(0, len(sent) - MAX_STATEMENTS), "locks": locks, "rewrites": rewrites,
        "indexes": indexes, "constraints": constraints, "hazards": found, "impact": impact, "checks": checks,
        "schema_diff": diff, "tables": tables, "failures": failures})


def _skip(ctx: Context) -> frozenset[str]:
    return frozenset(ctx.settings.rehearse.bookkeeping)


def _rollback(ctx: Context, m: Measured, room: Room, where: Where, rewrites: list[Rewrite]
              ) -> tuple[list[str] | None, list[TableDiff]]:
    """After a rollback that ran: the schema against before, every saved table's rows against before."""
    rb, saved, after = m.rollback, m.saved, m.after
    assert rb is not None and saved is not None and after is not None
    if rb.ran.exit_code != 0:
        return None, []
    now_schema = dump_schema(ctx, where, room.launch.work_dir / f"{room.record.id}-schema-after.sql")
    diff = schema_diff(saved.schema, now_schema)
    written = {t for t, n in after.tables.items() if n > m.before.tables.get(t, 0)}
    written |= {r.relation for r in rewrites}
    with room.connect(ctx.settings.drill.verify_statement_timeout)(where.dbname) as conn:
        now = db.snapshot(conn)
        tables = compare_rows(conn, saved, set(now.tables), written)
    return diff, tables


def _failures(m: Measured, checks: list[Check], diff: list[str] | None, tables: list[TableDiff]) -> list[str]:
    out = []
    mig = m.migrate
    out += _phase_failures(mig, "migration")
    out += [f"check {c.name}: {c.message}" for c in checks if c.status == "failed"]
    if m.rollback is not None:
        out += _phase_failures(m.rollback, "rollback")
        changed = removed_or_added(diff or [])
        if changed:
            out.append(f"the rollback does not restore the schema: {len(changed)} line(s) differ, first: {changed[0]}")
        for t in tables:
            if t.rows_after is None:
                out.append(f"{t.table} is gone after the rollback ({t.rows_before} row(s) before)")
            elif (t.missing or t.extra) and not t.migration_changed:
                out.append(f"the rollback changed {t.table}, which the migration never wrote: {t.missing} row(s) "
                           f"missing, {t.extra} not there before")
    return out


def _phase_failures(p: Phased, what: str) -> list[str]:
    out = []
    if p.ran.exit_code is None:
        out.append(f"the {what} was killed at the timeout")
    elif p.ran.exit_code != 0:
        err = next((s for s in p.statements if s.error), None)
        out.append(f"the {what} failed (exit {p.ran.exit_code})" +
                   (f": {err.error} in: {err.text}" if err else f": {(p.ran.tail or ['no output'])[-1]}"))
    if p.problem:
        out.append(p.problem)
    if p.phase.sessions_on_copy == 0 and p.phase.sessions_on_production > 0:
        out.append(f"the {what} reached production, not its copy: production saw {p.phase.sessions_on_production} "
                   "new session(s) of its role while the copy saw none")
    elif p.phase.sessions_on_copy == 0 and p.ran.exit_code == 0:
        out.append(f"the {what} never connected to the copy (no session, no statement of its role there)")
    return out


def _push_rate(ctx: Context) -> float | None:
    """The repository's measured write rate: the last full backup's bytes copied per second (the same path to
    the same repository archive-push takes, one segment at a time)."""
    try:
        run = ctx.history.last("backup-full", ("ok",))
    except OpsdError:  # an unreadable history leaves the estimate out, nothing else
        return None
    b = run.details_as(BackupResult) if run else None
    return b.delta / b.duration if b and b.duration > 0 and b.delta > 0 else None


def _replay_rate(ctx: Context) -> float | None:
    """The newest drill's WAL replay rate: what a standby of this cluster replays at, about."""
    try:
        runs = ctx.history.runs("drill", limit=5)
    except OpsdError:  # an unreadable history leaves the estimate out, nothing else
        return None
    rates = [d.phases.replay_rate for r in runs if (d := r.details_as(DrillResult)) and d.phases.replay_rate]
    return float(rates[0]) if rates else None
