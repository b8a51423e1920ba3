"""``opsd setup --query-stats`` and the ``queries`` check (docs/queries.md, "Setup").

Setup runs ALTER SYSTEM for what is missing (what is there is kept: a library appended, a log destination added,
a lower log_min_duration_statement never raised), reloads, restarts only when asked, and creates
pg_stat_statements once its library is loaded. It refuses, changing nothing, when pg_stat_statements is not
installed (a preloaded library that is not there stops the server from starting). It also turns off the logging of
bind parameters with the slow statements (log_parameter_max_length 0), unless the DBA chose a value. Under Patroni
it changes no setting: it says what to put in Patroni's configuration. The check says in one line what is missing
and how to turn it on: a warning, never critical (nothing else depends on query statistics).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import PurePosixPath

from pydantic import JsonValue

from opsd.actions.backup.setup import SetupResult, Step
from opsd.actions.queries import prereq
from opsd.adapters.postgres import PgCtl
from opsd.context import Context
from opsd.core.queries.counting import TRACK, TRACK_UTILITY
from opsd.core.records.checks import OK, SKIPPED, WARNING, CheckResult
from opsd.db import objectives as objectives_db
from opsd.db import query_setup
from opsd.db.connection import alter_system, reload_conf
from opsd.db.query_setup import QuerySettingRow
from opsd.errors import OpsdError

QUERIES = "queries"
PARAMS = "log_parameter_max_length"  # bind parameters logged with a slow statement: -1 (the default) all of them
_PLACES = ("data_directory", "log_directory")  # where the collector writes (the note when it is turned on)
NOT_INSTALLED = ("pg_stat_statements is not installed on this server (Debian: it comes with postgresql-15; "
                 "elsewhere postgresql-contrib)")


def facts(ctx: Context) -> prereq.Facts:
    """The server as the queries check sees it, with pg_stat_statements' own tracking settings (present once it is
    loaded) and the per-database/per-role overrides (pg_db_role_setting) that would make a window unknown."""
    with ctx.connect() as conn:
        rows = query_setup.settings(conn, (*prereq.SETTINGS, TRACK, TRACK_UTILITY))
        f = query_setup.facts(conn)
        found = tuple(objectives_db.overrides(conn))
    return prereq.Facts(settings={n: r.setting for n, r in rows.items()},
                        pending=frozenset(n for n, r in rows.items() if r.pending_restart),
                        extension=f.extension, read_all_stats=f.read_all_stats, role=f.role, database=f.database,
                        in_recovery=f.in_recovery, overrides=found)


def check_queries(ctx: Context, st: object = None) -> CheckResult:
    """``queries``: ok when everything is there, else a warning naming what is missing and how to turn it on
    (``st``: the other checks' shared state, unused)."""
    del st
    q = ctx.settings.queries
    if not q.enabled:
        return CheckResult(QUERIES, SKIPPED, "[queries] enabled = false: no query statistics are taken")
    found = prereq.missing(facts(ctx), q.lowest_threshold(), q.log_format)
    details: dict[str, JsonValue] = {"missing": [m.name for m in found],
                                     "restart": [m.name for m in found if m.restart]}
    return CheckResult(QUERIES, WARNING if found else OK, prereq.summary(found), details)


def patroni_refusal(todo: list[prereq.Change]) -> OpsdError:
    """Under Patroni the settings belong in its configuration: ALTER SYSTEM would fight it (postgresql.auto.conf
    wins over the postgresql.conf Patroni writes), and Patroni restarts the nodes itself."""
    yaml = "; ".join(f"{c.name}: '{','.join(c.items) if c.items else c.new}'" for c in todo)
    return OpsdError(f"this node is managed by Patroni ([patroni] url): set {yaml} under postgresql.parameters "
                     "('patronictl edit-config' sets them on every node), restart with 'patronictl restart "
                     "<scope> --pending', then run 'opsd setup --query-stats' again (it creates the extension); "
                     "opsd does not ALTER SYSTEM behind Patroni's back",
                     hint="docs/queries.md, 'Under Patroni'")


def not_installed(todo: list[prereq.Change], available: bool) -> OpsdError | None:
    """Pure: refuse before shared_preload_libraries gains a library the server does not have (the postmaster
    would not start after the restart). Installed means pg_available_extensions lists it: the library comes in
    the same package as the extension's control file."""
    if available or not any(c.name == prereq.PRELOAD for c in todo):
        return None
    return OpsdError(NOT_INSTALLED)


def params_change(configured: str) -> prereq.Change | None:
    """Pure: log_parameter_max_length 0 (a slow statement logged without its bind parameters) when it is the
    default -1 (all of them, whole); a value the DBA chose is kept. A reload; counting does not change."""
    return prereq.Change(PARAMS, configured, "0") if configured.strip() == "-1" else None


def params_kept(value: str) -> Step | None:
    """Pure: the line saying a log_parameter_max_length the DBA chose is kept, and what the log then holds."""
    if value.strip() in ("0", "-1"):
        return None
    return Step(PARAMS, "ok", f"{value} kept (not the default -1: your choice): slow statements are logged with "
                              f"their bind parameters, up to {value} bytes each")


def log_place(rows: dict[str, QuerySettingRow]) -> str:
    """Where the logging collector writes: log_directory, relative to the data directory unless absolute."""
    if "log_directory" not in rows or "data_directory" not in rows:  # hidden from a role without pg_read_all_settings
        return "log_directory (under the data directory unless absolute)"
    d = PurePosixPath(rows["log_directory"].configured)
    return str(d if d.is_absolute() else PurePosixPath(rows["data_directory"].setting) / d)


def collector_note(ctx: Context, rows: dict[str, QuerySettingRow]) -> Step:
    """The server log moves when the collector comes on: say where, before the operator looks in vain."""
    layout = ctx.layout
    before = (f"/var/log/postgresql/postgresql-{layout.major}-{layout.cluster}.log" if layout.kind == "debian"
              else "the file stderr went to (pg_ctl -l)")
    return Step("server log", "note", f"with logging_collector on, the server log moves to {log_place(rows)} "
                                      f"(the jsonlog files: *.json); {before} keeps only what comes before the "
                                      "collector starts")


def _read(ctx: Context) -> dict[str, QuerySettingRow]:
    with ctx.connect() as conn:
        return query_setup.settings(conn, (*prereq.SETTINGS, PARAMS, *_PLACES), files=True)


def _available(ctx: Context) -> bool:
    with ctx.connect() as conn:
        return query_setup.available(conn)


def _apply(ctx: Context, todo: list[prereq.Change]) -> list[Step]:
    with ctx.connect() as conn:
        for c in todo:
            if c.items:
                query_setup.alter_system_list(conn, c.name, c.items)
            else:
                alter_system(conn, c.name, c.new)
        reload_conf(conn)
    return [Step(f"set {c.name}", "changed", f"{c.old!r} -> {c.new!r} "
                                             + ("(restart needed)" if c.restart else "(reload: applied)"))
            for c in todo]


def _kept(ctx: Context, rows: dict[str, QuerySettingRow], todo: list[prereq.Change]) -> list[Step]:
    changed = {c.name for c in todo}
    params = rows[PARAMS].configured
    right = [n for n in (*prereq.SETTINGS, PARAMS) if n not in changed and (n != PARAMS or params == "0")]
    out = [Step("settings", "ok", f"already right: {', '.join(right)}")] if right else []
    kept = params_kept(params)
    out += [kept] if kept and PARAMS not in changed else []
    ms = prereq.threshold_ms(ctx.settings.queries.lowest_threshold())
    current = rows[prereq.MIN_DURATION].setting
    if ms is not None and prereq.MIN_DURATION not in changed and current != str(ms):
        out.append(Step(prereq.MIN_DURATION, "ok", f"{current} ms kept: it logs every statement over the lowest "
                                                   f"objective threshold ({ms} ms), and more"))
    return out


def _extension(ctx: Context, loaded: bool) -> Step:
    with ctx.connect() as conn:
        f = query_setup.facts(conn)
        if f.extension:
            return Step("extension", "ok", f"pg_stat_statements exists in database {f.database}")
        if f.in_recovery:
            return Step("extension", "skipped", "standby: create pg_stat_statements on the primary (it reaches "
                                                "this standby with the WAL)")
        if not loaded:
            return Step("extension", "pending", "CREATE EXTENSION pg_stat_statements once the library is loaded "
                                                "(after the restart)")
        query_setup.create_extension(conn)
    return Step("extension", "changed", f"CREATE EXTENSION pg_stat_statements in database {f.database}")


def _pending(rows: dict[str, QuerySettingRow]) -> list[str]:
    return [n for n in prereq.SETTINGS if rows[n].pending_restart]


def plan(configured: Mapping[str, str], lowest: timedelta | None, log_format: str, *, available: bool,
         patroni: bool) -> list[prereq.Change]:
    """Pure: the ALTER SYSTEM to run, from the files' values (``configured``: prereq.SETTINGS and PARAMS). Raises,
    before anything is changed, when pg_stat_statements is not installed (``available``) and would be preloaded,
    and under Patroni when something is to change."""
    todo = prereq.changes(configured, lowest, log_format)
    refusal = not_installed(todo, available)
    if refusal:
        raise refusal
    params = params_change(configured[PARAMS])
    todo += [params] if params else []
    if todo and patroni:
        raise patroni_refusal(todo)
    return todo


def _notes(ctx: Context, rows: dict[str, QuerySettingRow], todo: list[prereq.Change]) -> list[Step]:
    """What a change means outside opsd."""
    names, out = {c.name for c in todo}, []
    if prereq.COLLECTOR in names:
        out.append(collector_note(ctx, rows))
    if prereq.MESSAGES in names:
        out.append(Step("server messages", "note", "in English from now on, in the log and to clients (opsd reads "
                                                   "'duration:' in the log)"))
    if PARAMS in names:
        out.append(Step("bind parameters", "note", "slow statements are logged without their bind parameters; "
                                                   "their text, literals included, still is: protect the log "
                                                   "files (docs/queries.md#setup)"))
    return out


def _configure(ctx: Context, out: SetupResult) -> dict[str, QuerySettingRow]:
    """ALTER SYSTEM what is missing, reload; the settings after."""
    q = ctx.settings.queries
    rows = _read(ctx)
    todo = plan({n: rows[n].configured for n in (*prereq.SETTINGS, PARAMS)}, q.lowest_threshold(), q.log_format,
                available=_available(ctx), patroni=bool(ctx.settings.patroni.url))
    if todo:
        out.steps.extend(_apply(ctx, todo))
        out.steps.extend(_notes(ctx, rows, todo))
        rows = _read(ctx)
    out.steps.extend(_kept(ctx, rows, todo))
    return rows


def _restart_step(pending: list[str], patroni: bool) -> Step:
    how, then = (("through Patroni ('patronictl restart <scope> --pending') ", "") if patroni
                 else ("", " (or 'opsd setup --query-stats --restart')"))
    return Step("restart", "pending", f"restart PostgreSQL {how}to apply {', '.join(pending)}, then run "
                                      f"'opsd setup --query-stats' again{then}")


def setup(ctx: Context, *, restart: bool = False) -> SetupResult:
    out = SetupResult()
    patroni = bool(ctx.settings.patroni.url)
    rows = _configure(ctx, out)
    pending = _pending(rows)
    if pending and restart and not patroni:  # Patroni restarts its nodes itself
        PgCtl(ctx.settings.postgres, ctx.layout, ctx.runner, ctx.settings.opsd.state_dir / "pg_ctl.log").restart()
        out.steps.append(Step("restart", "changed", f"PostgreSQL restarted to apply {', '.join(pending)}"))
        rows = _read(ctx)
        pending = _pending(rows)
    out.steps.append(_extension(ctx, prereq.preloads_pgss(rows[prereq.PRELOAD].setting)))
    if pending:
        out.restart_needed = True
        out.steps.append(_restart_step(pending, patroni))
    return out
