"""``opsd indexes``, the monthly report's integrity and storage lines, and the index metrics: one report of what
the indexes cost and give (docs/queries.md, "Indexes"). The catalogs are read live (every connectable database);
scans, writes and statements come from the query snapshots over the window (default [queries] unused_window),
on every node of the cluster for the unused verdict. Every suggestion carries its statements; none is run."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from opsd.actions.queries.advise import missing_indexes
from opsd.actions.queries.catalog import Catalog, read_catalog
from opsd.core.queries import indexes as verdicts
from opsd.core.queries.missing import loads, seq_heavy, writes
from opsd.core.records.indexes import (
    IndexReport,
    IndexTotals,
    MissingIndex,
    RedundantIndex,
    UnusedIndex,
    UnusedVerdict,
)
from opsd.core.records.queries import NodeCoverage

if TYPE_CHECKING:
    from opsd.context import Context
    from opsd.db.connection import ConnectTo


def index_report(ctx: Context, *, window: timedelta | None = None, dbnames: list[str] | None = None,
                 advise: bool = True) -> IndexReport:
    """The whole report. Raises (one line) only when the server cannot be read at all; a database, a node or
    the advice that cannot be read is a problem line in the report."""
    from opsd.adapters.stores.index_reads import IndexReads
    from opsd.adapters.stores.queries import QueryStore

    q = ctx.settings.queries
    until = ctx.now()
    since = until - (window or q.unused_window)
    cat = read_catalog(ctx, dbnames)
    store = QueryStore(ctx.history.db)
    activity = [a for a in store.table_activity(since, until) if a.dbname in cat.databases]
    written = writes(activity, cat.partitions)
    uses = store.index_use(since, until)
    verdict, node_problems = _coverage(ctx, verdicts.last_read(store.node_coverage(since, until), uses),
                                       cat.walsenders)
    unused, undecided, kept = verdicts.unused(cat.indexes, uses, verdict, written)
    verdict = replace(verdict, undecided=undecided, kept=kept)
    heavy = seq_heavy(loads([a for a in activity if a.schemaname != verdicts.OWN_SCHEMA], cat.partitions),
                      q.seq_scan_rows)
    connect, refused = _advice(ctx) if advise and heavy else (None, "")
    missing = missing_indexes(connect, cat, heavy, IndexReads(ctx.history.db).statements(since, until),
                              refused=refused)
    redundant = verdicts.redundant(cat.indexes, written)
    invalid = verdicts.invalid(cat.indexes)
    return IndexReport(generated_at=until, since=since, until=until, databases=cat.databases,
                       unused_verdict=verdict, unused=unused, redundant=redundant, invalid=invalid, missing=missing,
                       not_valid=cat.not_valid, totals=_totals(cat, unused, redundant, missing),
                       problems=cat.problems + node_problems)


NO_ADVICE_USER = ("not EXPLAINed: [queries] advice_user is not set, and opsd does not plan application statements "
                  "on its own connection (planning runs their functions; docs/queries.md, \"How advice is proven\")")


def _advice(ctx: Context) -> tuple[ConnectTo | None, str]:
    """Connections as [queries] advice_user, or why there are none (no advice_user: every candidate a guess)."""
    user = ctx.settings.queries.advice_user
    if user is None:
        return None, NO_ADVICE_USER
    from opsd.db.indexes import advice_connect_to

    return advice_connect_to(ctx.settings, user), ""


def _coverage(ctx: Context, coverage: list[NodeCoverage], walsenders: int | None
              ) -> tuple[UnusedVerdict, list[str]]:
    """The unused verdict's coverage over the cluster's nodes as the snapshots name them (the local server, its
    standbys); when the standbys are not known (Patroni did not answer, or more standbys stream from this primary
    than opsd reads), no verdict."""
    from opsd.actions.queries.nodes import cluster_nodes
    from opsd.actions.role import node_role

    nodes = cluster_nodes(ctx, node_role(ctx))  # named as snapshot_job names them
    verdict = verdicts.coverage_verdict([n.name for n in nodes.nodes], coverage, ctx.settings.queries.unused_min_span)
    if nodes.problems and verdict.decided:
        verdict = replace(verdict, decided=False, reason=f"no verdict: {nodes.problems[0]}")
    unknown = verdicts.unknown_standbys(walsenders, len([n for n in nodes.nodes if not n.local]))
    if unknown and verdict.decided:
        verdict = replace(verdict, decided=False, reason=unknown)
    return verdict, nodes.problems + ([unknown.removeprefix("no verdict: ")] if unknown else [])


def _totals(cat: Catalog, unused: list[UnusedIndex], redundant: list[RedundantIndex], missing: list[MissingIndex]
            ) -> IndexTotals:
    live = [ix for ix in cat.indexes if not ix.attached]  # a partitioned index's size is its partitions'
    bad = [ix for ix in cat.indexes if not (ix.valid and ix.ready) and not ix.building]
    return IndexTotals(indexes=len(live), index_bytes=sum(ix.size_bytes for ix in live), unused=len(unused),
                       unused_bytes=sum(u.size_bytes for u in unused), redundant=len(redundant),
                       redundant_bytes=sum(r.size_bytes for r in redundant), invalid=len(bad),
                       invalid_bytes=sum(ix.size_bytes for ix in bad),
                       missing=len(missing), not_valid=len(cat.not_valid))
