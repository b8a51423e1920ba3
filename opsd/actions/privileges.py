"""``postgres.privileges``: opsd's role in production against what each job runs there.

A superuser is a warning whatever opsd is configured to do: opsd runs SQL on tables it does not own (the
side-restore comparison, a copy loaded with a table's constraints), and a table owner's code that runs inside
it (a CHECK, an index expression, a trigger) runs with opsd's rights. A role that lacks what a job opsd runs
by itself needs (the heartbeat, health sampling, backups) is a warning too; what the jobs a DBA starts by hand
need (setup, restore-point create, restore --table --into-schema, an in-place restore) is named, not judged.

What each job runs in production (the statements behind each need):

- check: ``archiver.sql`` (``pg_ls_archive_statusdir()``: pg_monitor), ``settings.sql`` (``pg_file_settings``:
  EXECUTE on ``pg_show_all_file_settings()``), ``server.sql`` (granted to PUBLIC);
- health: ``activity.sql``, ``replication_*.sql`` (other sessions' state and queries: pg_monitor);
- compare: ``table_compare.sql`` and friends read the live table (pg_read_all_data);
- heartbeat: ``heartbeat_write.sql`` and ``heartbeat_prune.sql`` (INSERT, DELETE on opsd.heartbeat);
- backup: ``CHECKPOINT`` right after a promotion (pg_checkpoint); pgBackRest connects as its own pg1-user;
- setup: ``ALTER SYSTEM`` of archive_mode/archive_command/wal_level, ``pg_reload_conf()``, ``heartbeat_setup.sql``
  (CREATE SCHEMA: CREATE on the database; REVOKE, COMMENT, CREATE INDEX: owner of schema opsd and its table);
- restore-point create: ``restore_point_create.sql`` (``pg_create_restore_point()``, ``pg_switch_wal()``);
- restore --table --into-schema: ``psql`` loads CREATE SCHEMA and the tables (CREATE on the database), then the
  comparison (pg_read_all_data);
- restore in place: after the promotion ``CHECKPOINT``, ``ALTER SYSTEM RESET`` of the recovery settings,
  ``pg_reload_conf()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import JsonValue

from opsd.actions.backup.setup import NAMES as ARCHIVE_SETTINGS
from opsd.actions.restore.run import RECOVERY_SETTINGS
from opsd.context import Context
from opsd.core.records.checks import OK, SKIPPED, WARNING, CheckResult
from opsd.db.queries import PrivilegesRow, ServerRow, fetch_one
from opsd.settings import Settings

CHECK = "postgres.privileges"
PREDEFINED = ("pg_monitor", "pg_read_all_data", "pg_write_all_data", "pg_checkpoint")  # roles it has the rights of
ENOUGH = "pg_monitor + pg_read_all_data (+ EXECUTE on pg_show_all_file_settings())"
RECIPE = "docs/install.md, 'A least-privilege role'"
MORE = ("setup needs ALTER SYSTEM, pg_reload_conf() and CREATE on the database; the heartbeat INSERT and DELETE on "
        "opsd.heartbeat; restore-point create EXECUTE on pg_create_restore_point() and pg_switch_wal(); restore "
        "--table --into-schema CREATE on the database; a backup right after a promotion pg_checkpoint")


@dataclass(frozen=True)
class Need:
    what: str
    has: Callable[[PrivilegesRow], bool]


MONITOR = Need("pg_monitor", lambda r: r.pg_monitor)
READ_ALL = Need("pg_read_all_data (SELECT on the live tables)", lambda r: r.pg_read_all_data)
CHECKPOINT = Need("pg_checkpoint (CHECKPOINT)", lambda r: r.pg_checkpoint)
RELOAD = Need("EXECUTE on pg_reload_conf()", lambda r: r.reload_conf)
CREATE_DB = Need("CREATE on the database", lambda r: r.create_on_database)

JOBS: dict[str, tuple[Need, ...]] = {
    "check": (MONITOR, Need("EXECUTE on pg_show_all_file_settings() (archive.settings reads pg_file_settings)",
                            lambda r: r.file_settings)),
    "health": (MONITOR,),
    "compare": (READ_ALL,),
    "heartbeat": (Need("opsd.heartbeat to exist (created by 'opsd setup')", lambda r: r.heartbeat_table),
                  Need("INSERT and DELETE on opsd.heartbeat and USAGE on schema opsd (pg_write_all_data, or GRANT)",
                       lambda r: r.heartbeat_write)),
    "backup": (Need("pg_checkpoint (a CHECKPOINT right after a promotion)", lambda r: r.pg_checkpoint),),
    "setup": (Need(f"ALTER SYSTEM on {', '.join(ARCHIVE_SETTINGS)}", lambda r: r.alter_system_archive), RELOAD,
              CREATE_DB, Need("ownership of schema opsd and opsd.heartbeat", lambda r: r.heartbeat_owner)),
    "restore-point create": (Need("EXECUTE on pg_create_restore_point(text)", lambda r: r.restore_point),
                             Need("EXECUTE on pg_switch_wal()", lambda r: r.switch_wal)),
    "restore --table --into-schema": (CREATE_DB, READ_ALL),
    "restore in place": (CHECKPOINT, Need("ALTER SYSTEM on the recovery settings", lambda r: r.alter_system_recovery),
                         RELOAD),
}


class _Known(Protocol):
    """What the checks before this one found (``checks._State``): the server, None when unreachable."""

    server: ServerRow | None


def check_privileges(ctx: Context, st: _Known) -> CheckResult:
    if st.server is None:
        return CheckResult(CHECK, SKIPPED, "PostgreSQL not reachable")
    with ctx.connect() as conn:
        row = fetch_one(conn, "privileges", PrivilegesRow,
                        {"archive": list(ARCHIVE_SETTINGS), "recovery": list(RECOVERY_SETTINGS)})
    return judge(row, scheduled_jobs(ctx.settings, in_recovery=st.server.in_recovery))


def scheduled_jobs(s: Settings, *, in_recovery: bool) -> frozenset[str]:
    """The jobs opsd runs by itself in production with these settings (the rest run when a DBA asks): check
    always; health when scheduled; on a primary the heartbeat (drill.heartbeat_interval) and backups."""
    jobs = {"check"}
    if s.opsd.role == "primary" and s.schedule.parsed("health") is not None:
        jobs.add("health")
    if s.opsd.role == "primary" and not in_recovery:
        if s.drill.heartbeat_interval.total_seconds() >= 1:
            jobs.add("heartbeat")
        if any(s.schedule.parsed(t) is not None for t in ("full", "diff", "incr")):
            jobs.add("backup")
    return frozenset(jobs)


def missing(row: PrivilegesRow, job: str) -> list[str]:
    """What ``job`` needs that the role lacks (a superuser lacks nothing)."""
    return [] if row.superuser else [n.what for n in JOBS[job] if not n.has(row)]


def judge(row: PrivilegesRow, scheduled: frozenset[str]) -> CheckResult:
    """Pure: a superuser (or a member of one) is a warning; so is a job opsd runs by itself lacking a need."""
    lacks = {job: missing(row, job) for job in JOBS}
    details = _details(row, scheduled, lacks)
    if row.superuser or row.superuser_via:
        who = (f"superuser {row.role}" if row.superuser
               else f"{row.role}, a member of superuser {row.superuser_via} (it can SET ROLE to it)")
        return CheckResult(CHECK, WARNING, f"opsd connects as {who}: a table owner's code run by opsd (a CHECK, an "
                                           "index expression, a trigger) would run with these rights; a role with "
                                           f"{ENOUGH} is enough for check, health and the side-restore comparison; "
                                           f"{MORE} ({RECIPE}; details.jobs)", details)
    short = [f"{job} lacks {'; '.join(m)}" for job, m in lacks.items() if m and job in scheduled]
    later = [f"{job} would lack {'; '.join(m)}" for job, m in lacks.items() if m and job not in scheduled]
    on_demand = f"; on demand: {'. '.join(later)}" if later else ""
    if short:
        return CheckResult(CHECK, WARNING, f"opsd connects as {row.role} (not a superuser); jobs opsd runs by itself "
                                           f"lack privileges: {'. '.join(short)}{on_demand} ({RECIPE})", details)
    return CheckResult(CHECK, OK, f"opsd connects as {row.role} (not a superuser); the jobs it runs by itself "
                                  f"({', '.join(sorted(scheduled))}) have what they need{on_demand}", details)


def _details(row: PrivilegesRow, scheduled: frozenset[str], lacks: dict[str, list[str]]) -> dict[str, JsonValue]:
    """The per-job table: each job, whether opsd runs it by itself, what it needs and what is missing."""
    jobs: list[JsonValue] = [{"job": job, "runs": "scheduled" if job in scheduled else "on demand",
                              "needs": [n.what for n in needs], "missing": list(lacks[job])}
                             for job, needs in JOBS.items()]
    return {"role": row.role, "database": row.database, "superuser": row.superuser,
            "superuser_via": row.superuser_via, "member_of": [name for name in PREDEFINED if getattr(row, name)],
            "jobs": jobs}
