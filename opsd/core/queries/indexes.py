"""Index verdicts, pure (docs/queries.md, "Indexes"): duplicate and covered indexes, unused ones (no scan on any
node, and only once every node's statistics cover the minimum span), invalid ones, and the statements that fix
each. An index that enforces something (primary key, unique, exclusion, a constraint's or a foreign key's) is never
suggested for dropping, nor called unused when its leading columns are a foreign key's; opsd's own schema is left
out. Names in the statements come quoted by the server (ix_indexes.sql, format %I)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from opsd.core.records.indexes import (
    IndexInfo,
    InvalidIndex,
    NodeSpan,
    RedundantIndex,
    UnusedIndex,
    UnusedVerdict,
)
from opsd.core.records.queries import IndexUse, NodeCoverage

OWN_SCHEMA = "opsd"  # opsd's own tables (opsd.heartbeat): never suggested for anything
TableKey = tuple[str, str, str]  # dbname, schema, table (a partition's: its partitioned table's)
IndexKey = tuple[str, str, str]  # dbname, schema, index name


def span_text(td: timedelta | float) -> str:
    """A span as the DBA reads it: ``2 d 3 h``, ``5 h 10 min``, ``12 min``, ``40 s``."""
    secs = max(0, int(td.total_seconds() if isinstance(td, timedelta) else td))
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min" if mins else f"{secs} s"


def table_key(ix: IndexInfo) -> TableKey:
    return ix.dbname, ix.root_schema, ix.root_table


def drop_statements(ix: IndexInfo) -> list[str]:
    """DROP INDEX CONCURRENTLY (no lock that blocks reads or writes); a partitioned index cannot be dropped so
    (PostgreSQL 15): a plain DROP INDEX, which locks the table and its partitions for a moment."""
    if ix.partitioned:
        return [f"DROP INDEX {ix.index_ref}"]
    return [f"DROP INDEX CONCURRENTLY {ix.index_ref}"]


_CREATE = re.compile(r"^CREATE (UNIQUE )?INDEX ")


def recreate_statement(ix: IndexInfo) -> str:
    """The index's own definition, built CONCURRENTLY where PostgreSQL can (not on a partitioned table)."""
    if ix.partitioned:
        return ix.definition
    return _CREATE.sub(lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY ", ix.definition, count=1)


# ----------------------------------------------------------------------------------------------- redundant
def _key(ix: IndexInfo) -> list[tuple[str, int, int, int]]:
    return list(zip(ix.keys, ix.opclasses, ix.collations, ix.options, strict=False))


def _comparable(ix: IndexInfo) -> bool:
    """Valid, and droppable on its own (a partition of a partitioned index goes with its parent)."""
    return ix.valid and ix.ready and not ix.building and not ix.attached


def _covers(big: IndexInfo, small: IndexInfo) -> str | None:
    """``duplicate`` when ``big`` has the same keys as ``small``, ``covered`` when ``small``'s keys are a strict
    prefix of ``big``'s (btree only: a prefix of a GiST or GIN index is another index), else None. Same method and
    predicate, and ``small``'s INCLUDE columns among ``big``'s columns (index-only scans keep working)."""
    if (big.method, big.predicate) != (small.method, small.predicate):
        return None
    bk, sk = _key(big), _key(small)
    if len(sk) > len(bk) or bk[:len(sk)] != sk:
        return None
    if not set(small.included) <= set(big.keys) | set(big.included):
        return None
    if len(sk) == len(bk):
        return "duplicate"
    return "covered" if big.method == "btree" else None


def _droppable(small: IndexInfo, big: IndexInfo, kind: str) -> bool:
    """Never drop one that enforces something, unless it is an exact duplicate of one that enforces the same
    (both unique, the kept one too) and it backs no constraint itself."""
    if small.is_primary or small.is_exclusion or small.constraints or small.replica_identity:
        return False
    if small.is_unique:
        return kind == "duplicate" and big.is_unique
    return True


def _rank(ix: IndexInfo) -> int:
    """What an index enforces, for choosing which of two duplicates to keep: a constraint's over a unique one over
    a plain one."""
    if ix.is_primary or ix.is_exclusion or ix.constraints or ix.replica_identity:
        return 2
    return 1 if ix.is_unique else 0


def _redundant_to(group: Sequence[IndexInfo]) -> dict[str, tuple[IndexInfo, str]]:
    """Each droppable index of one table -> (an index that makes it redundant, duplicate | covered). Of two
    duplicates, the one that enforces more is kept, else the first by name: the relation has no cycle."""
    out: dict[str, tuple[IndexInfo, str]] = {}
    for small in group:
        for big in group:
            if small is big or not (kind := _covers(big, small)):
                continue
            if kind == "duplicate" and (_rank(small), big.name) > (_rank(big), small.name):
                continue
            if _droppable(small, big, kind) and (small.name not in out or kind == "duplicate"):
                out[small.name] = (big, kind)
    return out


def redundant(indexes: Sequence[IndexInfo], writes: Mapping[TableKey, int]) -> list[RedundantIndex]:
    """Duplicate and covered indexes, each against an index that stays (a chain A within B within C: A and B
    dropped, both against C)."""
    by_table: dict[tuple[str, str, str], list[IndexInfo]] = defaultdict(list)
    for ix in indexes:
        if _comparable(ix) and ix.schema != OWN_SCHEMA:
            by_table[(ix.dbname, ix.schema, ix.table_name)].append(ix)
    out = []
    for group in by_table.values():
        found = _redundant_to(group)
        for name, (first, first_kind) in found.items():
            small = next(ix for ix in group if ix.name == name)
            big, kind = first, first_kind
            while big.name in found:  # follow the chain to an index that is kept
                big, step = found[big.name]
                kind = "covered" if step == "covered" else kind
            out.append(RedundantIndex(
                kind=kind, dbname=small.dbname, schema=small.schema, table_name=small.table_name, name=small.name,
                definition=small.definition, kept=big.name, kept_definition=big.definition,
                size_bytes=small.size_bytes, write_rows=writes.get(table_key(small)),
                statements=drop_statements(small)))
    return sorted(out, key=lambda r: (-r.size_bytes, r.dbname, r.schema, r.name))


# ----------------------------------------------------------------------------------------------- invalid
def invalid(indexes: Sequence[IndexInfo]) -> list[InvalidIndex]:
    """Indexes invalid or not ready and not being built right now (CREATE INDEX CONCURRENTLY in progress)."""
    return [InvalidIndex(dbname=ix.dbname, schema=ix.schema, table_name=ix.table_name, name=ix.name,
                         definition=ix.definition, size_bytes=ix.size_bytes, statements=drop_statements(ix),
                         recreate=recreate_statement(ix))
            for ix in indexes if not (ix.valid and ix.ready) and not ix.building]


# ----------------------------------------------------------------------------------------------- unused
def node_spans(nodes: Sequence[str], coverage: Sequence[NodeCoverage]) -> list[NodeSpan]:
    by_node = {c.node: c for c in coverage}
    out = []
    for node in nodes:
        c = by_node.get(node)
        if c is None or c.last_at <= c.first_at:  # none, or only a first snapshot: no delta counted yet
            out.append(NodeSpan(node=node, read=False, span_seconds=0.0,
                                first_at=c.first_at if c else None, last_at=c.last_at if c else None))
        else:
            out.append(NodeSpan(node=node, read=True, span_seconds=(c.last_at - c.first_at).total_seconds(),
                                first_at=c.first_at,
                                last_at=c.last_at))
    return out


def last_read(coverage: Sequence[NodeCoverage], uses: Sequence[IndexUse]) -> list[NodeCoverage]:
    """Each node's coverage ended at the last snapshot that read its indexes: a snapshot that could not read the
    node (it was down) is in the store too, but the scans since its last read are not counted yet."""
    seen: dict[str, datetime] = {}
    for u in uses:
        seen[u.node] = max(seen.get(u.node, u.last_at), u.last_at)
    return [replace(c, last_at=min(c.last_at, seen[c.node])) if c.node in seen else c for c in coverage]


def coverage_verdict(nodes: Sequence[str], coverage: Sequence[NodeCoverage], min_span: timedelta
                     ) -> UnusedVerdict:
    """Decided only when every node of the cluster has snapshots covering ``min_span`` of the window: a node
    unread (no snapshot, or only its first: no delta) or short means no index is called unused. ``coverage``:
    as :func:`last_read` ends it."""
    spans = node_spans(nodes, coverage)
    need = min_span.total_seconds()
    covered = min((s.span_seconds for s in spans), default=0.0)
    short = [f"{s.node} unread" if not s.read else f"{s.node} short: {span_text(s.span_seconds)}"
             for s in spans if not s.read or s.span_seconds < need]
    if not spans:
        short = ["no node known"]
    if short:
        reason = (f"no verdict: statistics cover {span_text(covered)} of {span_text(min_span)} "
                  f"({'; '.join(short)})")
        return UnusedVerdict(decided=False, reason=reason, min_span_seconds=need, covered_seconds=covered, nodes=spans)
    return UnusedVerdict(decided=True, reason=f"statistics of {len(spans)} node(s) cover {span_text(covered)}",
                         min_span_seconds=need, covered_seconds=covered, nodes=spans)


def _uses(indexes: Sequence[IndexInfo], uses: Sequence[IndexUse]) -> dict[IndexKey, list[IndexUse]]:
    """Each index's statistics per node; a partition of a partitioned index counts for the partitioned one."""
    parent = {(ix.dbname, ix.schema, ix.name): (ix.dbname, ix.root_schema, ix.parent)
              for ix in indexes if ix.attached and ix.parent}
    out: dict[IndexKey, list[IndexUse]] = defaultdict(list)
    for u in uses:
        key = (u.dbname, u.schemaname, u.indexname)
        p = parent.get(key)
        out[(p[0], p[1], p[2]) if p and p[2] else key].append(u)
    return out


def _index_verdict(ix: IndexInfo, seen: list[IndexUse], verdict: UnusedVerdict) -> tuple[bool, timedelta, str]:
    """(unused, the shortest span it was seen on a node, why no verdict)."""
    name = f"{ix.dbname}: {ix.index_ref}"
    if any(u.scans > 0 for u in seen):
        return False, timedelta(0), ""
    spans: dict[str, timedelta] = {}
    for u in seen:  # a partitioned index: its partitions' spans, the shortest of each node
        span = u.last_at - u.first_at
        spans[u.node] = min(spans.get(u.node, span), span)
    missing = [s.node for s in verdict.nodes if s.node not in spans]
    if missing:
        return False, timedelta(0), f"{name}: no statistics from {', '.join(missing)}"
    shortest = min(spans.values())
    if shortest.total_seconds() < verdict.min_span_seconds:
        return False, shortest, f"{name}: seen for {span_text(shortest)} only (new, or its table was)"
    return True, shortest, ""


def _fk_kept(ix: IndexInfo) -> str:
    return (f"{ix.dbname}: {ix.index_ref}: never unused: its leading columns are foreign key "
            f"{', '.join(ix.foreign_keys)}'s (a DELETE or UPDATE of a referenced row finds the referencing rows by "
            "it; without it, each is a sequential scan)")


def unused(indexes: Sequence[IndexInfo], uses: Sequence[IndexUse], verdict: UnusedVerdict,
           writes: Mapping[TableKey, int]) -> tuple[list[UnusedIndex], list[str], list[str]]:
    """Indexes no node scanned in the window, the ones left undecided (why), and the ones no node scanned that
    are kept anyway (why: a foreign key's). Nothing when the verdict is not decided. Never an index that enforces
    something, nor an invalid one (listed as invalid), nor one in opsd's own schema."""
    if not verdict.decided:
        return [], [], []
    seen = _uses(indexes, uses)
    found, undecided, kept = [], [], []
    for ix in indexes:
        if ix.enforces or not _comparable(ix) or ix.schema == OWN_SCHEMA:
            continue
        is_unused, span, why = _index_verdict(ix, seen.get((ix.dbname, ix.schema, ix.name), []), verdict)
        if why:
            undecided.append(why)
        if is_unused and ix.foreign_keys:
            kept.append(_fk_kept(ix))
        elif is_unused:
            found.append(UnusedIndex(dbname=ix.dbname, schema=ix.schema, table_name=ix.table_name, name=ix.name,
                                     definition=ix.definition, size_bytes=ix.size_bytes,
                                     write_rows=writes.get(table_key(ix)), seen_seconds=span.total_seconds(),
                                     statements=drop_statements(ix)))
    return sorted(found, key=lambda u: (-u.size_bytes, u.dbname, u.schema, u.name)), undecided, kept


def unknown_standbys(streaming: int | None, read: int) -> str | None:
    """Why there is no unused verdict when more physical standbys stream from the primary (``streaming``,
    db/sql/ix_walsenders.sql; None: not a primary, not checked) than the ``read`` standbys opsd reads: an index
    scanned only on one of the others would be called unused."""
    if streaming is None or streaming <= read:
        return None
    return (f"no verdict: {streaming - read} standby(s) stream from this primary that opsd does not read: add them "
            "to [queries] standbys (or [patroni] url)")
