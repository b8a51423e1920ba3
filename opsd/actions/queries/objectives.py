"""``opsd queries``, the monthly report's objectives and the metrics: each query objective over a period, per
day and whole, counted from the snapshots of the node whose duration log this host reads (docs/queries.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from opsd.actions.queries.slowlog import target_of
from opsd.adapters.stores.objectives import ObjectiveStore
from opsd.context import Context
from opsd.core.queries.objectives import judge, judge_days, period_state, shares
from opsd.core.records.objectives import UNKNOWN, UNMATCHED, ObjectiveReport, ObjectiveResult
from opsd.core.schedule import parse_schedule
from opsd.errors import OpsdError, UsageError
from opsd.settings_queries import Objective

TOP = 10  # statements named per objective


def tolerance(ctx: Context, now: datetime) -> timedelta:
    """How far the snapshots may fall short of a day's edges before the day is incomplete: two snapshot
    periods (a snapshot that runs late, or one that failed)."""
    sched = parse_schedule(ctx.settings.schedule.queries)
    period = sched.period(now) if sched is not None else timedelta(minutes=5)
    return max(2 * period, timedelta(minutes=1))


def _pick(objectives: list[Objective], name: str | None) -> list[Objective]:
    if name is None:
        return objectives
    found = [o for o in objectives if o.name == name]
    if not found:
        known = ", ".join(o.name for o in objectives) or "none"
        raise UsageError(f"no objective named {name!r} in [queries] objectives (there are: {known})")
    return found


def _result(ctx: Context, store: ObjectiveStore, node: str | None, o: Objective, span: tuple[datetime, datetime]
            ) -> ObjectiveResult:
    lo, hi = span
    t = target_of(o)
    zone, tol = ctx.settings.opsd.tz, tolerance(ctx, hi)
    windows = store.windows(node, t, lo, hi) if node else []
    calls, over, state, reasons = judge(windows, lo, hi, o.target, zone=zone, tolerance=tol, described=t.described)
    if node is None:
        state, reasons = UNKNOWN, ["no snapshot has read the duration log yet (the daemon's queries job, "
                                   "[schedule] queries)"]
    days = judge_days(windows, lo, hi, o.target, zone=zone, tolerance=tol, described=t.described)
    share_over, share_under = shares(calls, over)
    return ObjectiveResult(
        name=o.name, threshold_ms=t.threshold_ms, target=o.target, database=o.database, role=o.role, calls=calls,
        over=over, share_over=share_over, share_under=share_under, state=period_state(state, days),
        reasons=reasons, days=days, top=store.contributors(node, t, lo, hi, limit=TOP) if node else [])


def _server_names(ctx: Context) -> tuple[set[str], set[str]] | str:
    """The server's databases and roles, or why they could not be read."""
    from opsd.db.objectives import names

    try:
        with ctx.connect() as conn:
            return names(conn)
    except OpsdError as e:
        return str(e)


def check_selectors(ctx: Context, results: list[ObjectiveResult]) -> tuple[list[ObjectiveResult], list[str]]:
    """An objective whose selector names a database or role the server does not have: when it counted nothing,
    its state is unmatched (not "no statements": a typo is not a clean record), with the reason; else the reason
    is said. Returns the results and the notes (the server could not be asked: not checked)."""
    if not any(r.database or r.role for r in results):
        return results, []
    names = _server_names(ctx)
    if isinstance(names, str):
        return results, [f"the objectives' database/role selectors could not be checked (the server: {names})"]
    databases, roles = names
    out = []
    for r in results:
        absent = ([f"database {r.database!r}"] if r.database and r.database not in databases else []) + \
                 ([f"role {r.role!r}"] if r.role and r.role not in roles else [])
        if not absent:
            out.append(r)
            continue
        why = (f"the selector names {' and '.join(absent)}, which the server does not have ([queries] "
               "objectives): it matches no statement")
        out.append(r.model_copy(update={"reasons": [why, *r.reasons],
                                        **({"state": UNMATCHED} if not (r.calls or r.over) else {})}))
    return out, []


def objective_report(ctx: Context, since: datetime, until: datetime, objective: str | None = None, *,
                     selectors: bool = True) -> ObjectiveReport:
    """Every objective of ``[queries]`` (or the one named) over [since, until), until cut at now. UsageError
    for an objective that is not configured. ``selectors``: check the selectors' database and role exist (a
    connection to the server)."""
    q = ctx.settings.queries
    chosen = _pick(q.objectives, objective)
    hi = min(until, ctx.now())
    store = ObjectiveStore(ctx.history.db)
    node = store.log_node()
    results = [_result(ctx, store, node, o, (since, hi)) for o in chosen]
    results, notes = check_selectors(ctx, results) if selectors else (results, [])
    if not q.enabled:
        notes.append("[queries] enabled = false: no snapshot is taken")
    if node is not None and (hidden := store.hidden_statements(node, since, hi)):
        notes.append(f"pg_stat_statements hid the statements of {hidden} database/role pair(s) from opsd's role "
                     "(it lacks pg_read_all_stats): their calls are counted, their texts and figures are not "
                     "shown (GRANT pg_read_all_stats TO <opsd role>)")
    if any(c.text is None for r in results for c in r.top):
        notes.append("a statement shown without text: hidden from opsd's role, or pg_stat_statements did not see "
                     "it under the role that logged it (SET ROLE: docs/queries.md)")
    return ObjectiveReport(since=since, until=until, timezone=str(ctx.settings.opsd.tz), node=node,
                           objectives=results, notes=notes)
