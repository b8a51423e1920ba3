"""``opsd rehearse``: one copy of production (the copies room: planned, recorded, quarantined, torn down), the
migration run against it as its own OS user and role while its locks are sampled, what it did measured, the
checks after it, the rollback and its comparison, one verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from opsd.actions.copies.partial import Partial
from opsd.actions.copies.room import Room, copy_room
from opsd.actions.rehearse import gate as gates
from opsd.actions.rehearse.after import Measured, Phased, after_checks, conclude
from opsd.actions.rehearse.state import Before, Where, compared_tables, dump_schema, save_rows
from opsd.actions.rehearse.watch import Watch
from opsd.actions.restore.plan import Plan
from opsd.context import Context
from opsd.core.records.rehearse import Phase, RehearsalResult, Statement
from opsd.core.rehearse.statements import statements as logged_statements
from opsd.core.units import human_bytes
from opsd.db import rehearse as db
from opsd.db.connection import Conn, factory
from opsd.errors import RefusedError

Report = Callable[[str], None]


@dataclass(frozen=True)
class RehearseRequest:
    migrate: str
    rollback: str | None
    dbname: str
    role: str | None
    os_user: str
    workdir: Path
    env: dict[str, str]
    timeout: float
    keep: bool = False
    tag: str | None = None  # names the restore point in the production steps


@dataclass(frozen=True)
class RehearsePlan:
    request: RehearseRequest
    restore: Plan
    partial: Partial
    target: str


def run_rehearsal(ctx: Context, rp: RehearsePlan, report: Report) -> RehearsalResult:
    with copy_room(ctx, "rehearse", rp.restore.request.dest, report, port=rp.restore.request.port,
                   keep=rp.request.keep) as room:
        gate = gates.open_gate(ctx, room.launch.work_dir, room.record.id, rp.request.os_user)
        try:
            result = _rehearse(ctx, rp, room, gate, report)
        finally:
            gates.remove_gate(gate, kept=rp.request.keep)
        if rp.request.keep:
            result = result.model_copy(update={"kept": str(room.dest)})
        return result


def _rehearse(ctx: Context, rp: RehearsePlan, room: Room, gate: gates.Gate, report: Report) -> RehearsalResult:
    req = rp.request
    assert room.launch.socket_dir is not None
    room.launch = replace(room.launch, server_options=(*room.launch.server_options,
                                                       *gate.server_options(room.launch.socket_dir)))
    restored = room.restore(rp.restore, report)
    recovered = room.start(rp.restore, restored, report)
    superuser = room.superuser or ctx.settings.postgres.user
    where = Where(str(room.launch.socket_dir), room.port, superuser, req.dbname)
    with room.connect()(req.dbname) as conn:
        role = req.role or db.database_owner(conn)
        _refuse_role(db.role(conn, role), role)
        gates.close_gate(ctx, gate, role, {superuser, ctx.settings.postgres.user})
        conn.execute("SELECT pg_catalog.pg_reload_conf()")
        report(f"the copy lets {gate.os_user} in as {role} only, through {gate.socket_dir}")
        before = db.snapshot(conn)
        saved = None
        if req.rollback:
            report("saving the schema and every table's row checksums before the migration ...")
            saved = Before(dump_schema(ctx, where, room.launch.work_dir / f"{room.record.id}-schema-before.sql"),
                           save_rows(conn, compared_tables(ctx, before.tables),
                                     room.launch.work_dir / f"{room.record.id}-rows"))
    base = RehearsalResult(verdict="FAILED", dbname=req.dbname, role=role, os_user=gate.os_user,
                           backup=rp.restore.backup.label if rp.restore.backup else None, target=rp.target,
                           recovered_at=str(recovered.last_replayed_at) if recovered.last_replayed_at else None,
                           restore_seconds=round(restored.restore_seconds, 3),
                           recovery_seconds=recovered.recovery_seconds,
                           sample_interval=ctx.settings.rehearse.sample_interval.total_seconds())
    stage = Stage(ctx, req, room, gate, where, role, Path(recovered.log_file or ""), report)
    m = Measured(before=before, migrate=stage.phase("migrate", req.migrate), saved=saved)
    with room.connect()(req.dbname) as conn:
        m.after = db.snapshot(conn)
    checks = after_checks(ctx, room, m, req.dbname, report) if m.migrate.ran.exit_code == 0 else []
    if req.rollback and m.migrate.ran.exit_code == 0:
        m.rollback = stage.phase("rollback", req.rollback)
    return conclude(ctx, base, m, checks, room=room, where=where)


def check_role_live(ctx: Context, req: RehearseRequest) -> None:
    """Before anything is restored: the role as production knows it today (the copy's, at the target time,
    decides again). A drill host has no production to ask."""
    if ctx.settings.opsd.role != "primary":
        return
    with _production(ctx, req.dbname) as conn:
        name = req.role or db.database_owner(conn)
        _refuse_role(db.role(conn, name), name)


def _refuse_role(r: db.RoleRow | None, name: str) -> None:
    if r is None:
        raise RefusedError(f"role {name!r} does not exist at the target time: the migration has no role to run as",
                           hint="set [rehearse] role (or --role) to the role the migration connects as")
    why = ("a superuser" if r.superuser else "allowed to create roles (it could grant itself any role)"
           if r.createrole else f"a member of {', '.join(r.server_roles)}" if r.server_roles else
           "not allowed to log in" if not r.login else None)
    if why:
        raise RefusedError(f"role {name} is {why}: the migration would run with rights that reach the copy's host, "
                           "so opsd does not run it", hint="rehearse as the role that owns the application's tables "
                                                           "(--role), without SUPERUSER and CREATEROLE")


@dataclass(frozen=True)
class Stage:
    """Where the operator's command runs: the copy, its gate, the role, the copy's server log."""

    ctx: Context
    req: RehearseRequest
    room: Room
    gate: gates.Gate
    where: Where
    role: str
    log: Path
    report: Report

    def phase(self, name: str, cmd: str) -> Phased:
        """One run of the operator's command, watched; what it sent and took read back from the copy's log."""
        s, room, where = self.ctx.settings, self.room, self.where
        env = {**self.req.env, "PGHOST": str(self.gate.socket_dir), "PGPORT": str(room.port), "PGUSER": self.role,
               "PGDATABASE": where.dbname, "PGAPPNAME": f"opsd-rehearse-{name}"}
        offset = self.log.stat().st_size if self.log.exists() else 0
        copy = room.connect()
        with copy(where.dbname) as conn:
            wal0, since = db.wal_position(conn), db.now(conn)
        prod = (lambda: _production(self.ctx, where.dbname)) if s.opsd.role == "primary" else None
        watch = Watch(lambda: copy(where.dbname), prod, self.role, since, s.rehearse.sample_interval.total_seconds())
        watch.start()
        self.report(f"running the {name}: {gates.shown_command(cmd)}")
        t0 = time.monotonic()
        try:
            ran = gates.run(self.ctx, gates.argv(self.ctx, self.gate, cmd, self.req.workdir, env),
                            self.req.timeout, self.report)
        finally:
            spans = watch.stop()
        with copy(where.dbname) as conn:
            wal1 = db.wal_position(conn)
        with open(self.log, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            sent = [Statement(text=x.text, ms=x.ms, error=x.error, phase=name)
                    for x in logged_statements(f, self.role)]
        phase = Phase(name=name, command=gates.shown_command(cmd), exit_code=ran.exit_code,
                      seconds=round(time.monotonic() - t0, 3), output_tail=ran.tail,
                      sessions_on_copy=max(watch.copy_sessions, 1 if sent else 0),
                      sessions_on_production=watch.production_sessions, wal_bytes=max(0, wal1 - wal0))
        self.report(f"the {name} " + (f"exited {ran.exit_code}" if ran.exit_code is not None else "was killed") +
                    f" after {phase.seconds:.1f} s: {len(sent)} statement(s), {len(spans)} lock(s) seen, "
                    f"{human_bytes(phase.wal_bytes)} of WAL")
        return Phased(phase, ran, sent, spans, watch.problem, watch.production_unchecked)


def _production(ctx: Context, dbname: str) -> Conn:
    pg = ctx.settings.postgres
    return factory(pg.model_copy(update={"dbname": dbname}), run_as=ctx.settings.opsd.run_as)()


def next_steps(ctx: Context, req: RehearseRequest) -> list[str]:
    """The real run, for a rehearsal that passed: a restore point first, the migration, and the way back."""
    tag = req.tag or f"{ctx.now():%Y%m%d-%H%M}"
    back = (f"# to roll back: {gates.shown_command(req.rollback)}   (rehearsed: exact)" if req.rollback else
            "# no rollback was rehearsed")
    return [f"opsd restore-point create before-{tag}", gates.shown_command(req.migrate), back,
            f"# last resort: opsd restore --to-name before-{tag} --target-dir DIR (beside production), "
            "then opsd restore --table ... for what the migration damaged"]
