"""The scheduled query-statistics snapshot (``[schedule] queries``), on the primary only: one snapshot of every
node of the cluster (actions/queries/nodes.py), each node read in one short statement per database under
``[queries] snapshot_timeout`` and ``snapshot_lock_timeout``; the deltas since the node's previous reading
(core/queries/delta.py) stored with the raw counters for the next (adapters/stores/queries.py); the duration log
read for the local node's snapshot right after its pg_stat_statements (actions/queries/slowlog.read_log, stored
with the snapshot's id by slowlog.save); old snapshots merged by the hour and the day
(core/queries/tiers.py), those older than ``[queries] keep`` pruned. A node or database that cannot be read is a
problem line on its snapshot and the others go on; a failed snapshot is loud: ``queries.snapshot_failed`` and the
alert ``queries.snapshot``, resolved when every node reads again. Ends with one ``queries.snapshot`` event."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from opsd.actions import alerts
from opsd.actions.queries import slowlog
from opsd.actions.queries.nodes import Node, cluster_nodes
from opsd.actions.queries.reading import (
    RelationsRead,
    connector,
    day_sizes,
    hidden_problem,
    main_database,
    opened,
    read_relations,
    stat_family,
    texts_for,
)
from opsd.actions.role import node_role
from opsd.adapters.stores.queries import QueryStore, Sighting, SnapshotWrite
from opsd.adapters.stores.query_last import NodeFacts, Previous
from opsd.context import Context
from opsd.core.queries.delta import relation_deltas, statement_deltas
from opsd.core.role import Role
from opsd.core.units import format_duration
from opsd.db import querystats
from opsd.db.connection import Conn
from opsd.db.querystats import ServerFacts, StatementsUnavailable
from opsd.errors import OpsdError
from opsd.log import get_logger

ALERT = "queries.snapshot"


@dataclass
class NodeResult:
    node: str
    snapshot_id: int
    failures: list[str] = field(default_factory=list)  # what could not be read (the alert says these)
    statements: int = 0  # statements that moved
    relations: int = 0  # tables and indexes that moved
    logged: bool = False  # its duration log was read right after its statements (the local node)


def _role_changes(prev: NodeFacts | None, facts: ServerFacts, node: str) -> None:
    """A promotion, a demotion or a new timeline is logged; the counts go on (another server behind the node's
    name is told by the deltas, which start a new baseline)."""
    if prev is None:
        return
    if prev.in_recovery != facts.in_recovery or prev.timeline != facts.timeline:
        get_logger().warning("queries.role_changed", node=node, in_recovery=facts.in_recovery,
                             was_in_recovery=prev.in_recovery, timeline=facts.timeline, was_timeline=prev.timeline)


def _statements(store: QueryStore, conn: Conn, facts: ServerFacts, dbname: str, *, prev: Previous,
                w: SnapshotWrite) -> list[str]:
    """pg_stat_statements' deltas into ``w``; the failures (a timeout, texts that could not be read)."""
    try:
        read = querystats.statements(conn, facts, dbname)
    except OpsdError as e:
        w.problems.append(f"statements not read ({e}): counted at the next snapshot that reads them")
        return [f"statements: {e}"]
    if isinstance(read, StatementsUnavailable):
        w.problems.append(f"statements: {read.reason}")
        return []
    family = stat_family(facts, read)
    out = statement_deltas(prev.statements, family)
    w.statements, w.reset, w.dealloc = out.counted, out.reset, out.dealloc
    w.problems += out.notes
    if (hidden := hidden_problem(facts, family, str(conn.info.user))) is not None:
        w.problems.append(hidden)
    w.statement_deltas, w.statements_now = out.deltas, family
    moved = {(d.queryid, d.dbname, d.rolname) for d in out.deltas}
    try:
        w.texts = texts_for(conn, read.schema, moved - store.texts_known(moved), family)
    except OpsdError as e:
        w.problems.append(f"statement texts not read ({e}): asked again at the next snapshot")
        return [f"statement texts: {e}"]
    return []


def _relations(ctx: Context, rels: RelationsRead, prev: Previous, w: SnapshotWrite, local: bool) -> None:
    for family in rels.families:
        out = relation_deltas(prev.databases.get(family.dbname), family)
        w.relation_deltas += out.deltas
        w.problems += out.notes
        if not local:
            w.reset = w.reset or out.reset
        w.seen += [Sighting(k[0], family.dbname, e.schemaname, e.relname, e.indexname, e.size_bytes, k in out.created)
                   for k, e in family.entries.items()]
    w.databases_now, w.databases_gone = rels.families, rels.gone
    w.problems += rels.problems
    if local:
        w.sizes_day = w.taken_at.astimezone(ctx.settings.opsd.tz).date()
        w.table_sizes = day_sizes(rels.rows)


def _read_log(ctx: Context, node: str) -> slowlog.Pending:
    """The local node's duration log, read right after its pg_stat_statements: the executions it timed and the
    calls end at nearly the same moment (the tables of every database are read after)."""
    try:
        return slowlog.read_log(ctx, ctx.history.db, node)
    except Exception as e:  # a bug or a broken file: the snapshot stands, the objective is unknown
        return slowlog.Pending(node, slowlog.LogOutcome("unknown", f"duration log not read: {type(e).__name__}: {e}"))


def _read(ctx: Context, store: QueryStore, node: Node, prev: Previous, w: SnapshotWrite, *,
          log: list[slowlog.Pending]) -> list[str]:
    """Read the node into ``w`` (the local node's duration log into ``log``); the failures. Raises OpsdError
    when the node cannot be read at all."""
    connect = connector(ctx, node)
    main = main_database(ctx, node)
    failures: list[str] = []
    with opened(connect, main) as conn:
        facts = querystats.server_facts(conn)
        _role_changes(prev.node, facts, node.name)
        w.facts = NodeFacts(w.taken_at, facts.started_at, facts.system_identifier, facts.timeline,
                            facts.in_recovery)
        if node.local:
            failures += _statements(store, conn, facts, main, prev=prev, w=w)
            log.append(_read_log(ctx, node.name))
        rels = read_relations(connect, conn, main, facts, known=set(prev.databases), node=node.name)
    _relations(ctx, rels, prev, w, node.local)
    return failures + [p.split(" (", 1)[0] for p in rels.problems]


def _long_window(ctx: Context, w: SnapshotWrite) -> list[str]:
    """A window much longer than the schedule's (the node unread meanwhile, the daemon stopped): its counts all
    land on this snapshot, and it says so."""
    sched = ctx.settings.schedule.parsed("queries")
    period = sched.period(w.taken_at) if sched is not None else timedelta(minutes=5)
    if w.since is None or w.taken_at - w.since <= max(3 * period, timedelta(minutes=30)):
        return []
    return [f"{w.node}: counted since its previous reading at {w.since:%Y-%m-%d %H:%M:%S%z} "
            f"({format_duration(w.taken_at - w.since)}): not spread over that time"]


def take(ctx: Context, store: QueryStore, node: Node, problems: list[str] | None = None) -> NodeResult:
    """One snapshot of one node, written whatever happens (a node not read: its snapshot says why)."""
    prev = store.previous(node.name)
    w = SnapshotWrite(node=node.name, taken_at=ctx.now(), since=prev.node.at if prev.node else None,
                      statements=False, problems=list(problems or []))
    log: list[slowlog.Pending] = []
    try:
        failures = _read(ctx, store, node, prev, w, log=log)
    except OpsdError as e:
        failed = SnapshotWrite(node=node.name, taken_at=w.taken_at, since=w.since, statements=False,
                               problems=[*w.problems, f"{node.name} not read ({e}): its counts go to the next "
                                                      "snapshot that reads it"])
        return NodeResult(node.name, store.write(failed, prev), [f"{node.name}: {e}"])
    w.problems[:0] = _long_window(ctx, w)
    sid = store.write(w, prev)
    if log:
        _duration_log(ctx, store, sid, log[0])
    return NodeResult(node.name, sid, failures, len(w.statement_deltas), len(w.relation_deltas), bool(log))


def _duration_log(ctx: Context, store: QueryStore, snapshot_id: int, read: slowlog.Pending | None = None) -> None:
    """The duration log of the local node's window, stored against its snapshot (``read``: read already; None:
    read now). A failure of the reader is the window's "unknown"."""
    try:
        out = (slowlog.save(ctx, ctx.history.db, snapshot_id, read) if read is not None
               else slowlog.collect(ctx, ctx.history.db, snapshot_id))
        state, problem = out.state, out.problem
    except Exception as e:  # a bug or a broken file: the snapshot stands, the objective is unknown
        state, problem = "unknown", f"duration log not read: {type(e).__name__}: {e}"
    store.set_log_state(snapshot_id, state, problem)


def _report(ctx: Context, results: list[NodeResult], seconds: float) -> str:
    log = get_logger()
    failed = [r for r in results if r.failures]
    for r in failed:
        log.error("queries.snapshot_failed", node=r.node, snapshot=r.snapshot_id, problems=r.failures)
    if failed:
        alerts.fire(ctx, ALERT, "query statistics snapshot incomplete: "
                    + "; ".join(f for r in failed for f in r.failures), severity="warning",
                    details={"nodes": [r.node for r in failed]})
    else:
        alerts.resolve(ctx, ALERT, "query statistics snapshots read every node again")
    log.info("queries.snapshot", nodes=[r.node for r in results], statements=sum(r.statements for r in results),
             relations=sum(r.relations for r in results), failed=[r.node for r in failed],
             seconds=round(seconds, 3))
    return "failed" if failed else "ok"


def snapshot_job(ctx: Context) -> str:
    """One snapshot of every node, on the primary; ``ok``, ``failed`` (something not read: alert) or ``skipped``
    (this node is not the primary)."""
    started = time.monotonic()
    role = node_role(ctx)
    if role.role != Role.PRIMARY:
        get_logger().debug("queries.skipped", reason=f"snapshots run on the primary; this node: {role.describe()}")
        return "skipped"
    store = QueryStore(ctx.history.db)
    found = cluster_nodes(ctx, role)
    results = [take(ctx, store, n, found.problems if n.local else None) for n in found.nodes]
    if not results[0].logged:  # the local node not read: its log is read now
        _duration_log(ctx, store, results[0].snapshot_id)
    if found.problems:
        results[0].failures += found.problems
    store.thin(ctx.now(), ctx.settings.opsd.tz)
    store.prune(ctx.now() - ctx.settings.queries.keep)
    return _report(ctx, results, time.monotonic() - started)
