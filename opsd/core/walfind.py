"""What the WAL says a table went through (pure): row changes by transaction, rewrites, truncations and drops.

The events come from pg_waldump (adapters/walscan.py); the table's identity from the live catalog (its OID and
the file nodes its heap has now). A rewrite (TRUNCATE, VACUUM FULL, CLUSTER, an ALTER TABLE that rewrites) gives
the heap a new file node: the old one is found by walking the range backwards from the file node the catalog
knows, through each transaction that created it and dropped others when it committed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

RelNode = tuple[int, int, int]  # tablespace, database, relfilenode (pg_waldump's "rel 1663/5/16384")


@dataclass(frozen=True)
class Change:
    """Rows a record changed in one heap file node (an UPDATE counts once, whichever pages it touched)."""

    xid: int
    node: RelNode
    kind: str  # insert | update | delete | page (a full-page image: VACUUM FULL, CLUSTER write their copy so)
    rows: int


@dataclass(frozen=True)
class Created:
    """A new file node (CREATE TABLE, or the new file of a rewrite)."""

    xid: int
    node: RelNode


@dataclass(frozen=True)
class End:
    """A transaction's commit or abort record."""

    xid: int
    lsn: str
    time: datetime
    committed: bool
    subxacts: tuple[int, ...] = ()
    dropped_nodes: tuple[RelNode, ...] = ()  # file nodes removed at commit (DROP, and a rewrite's old file)
    dropped_oids: tuple[int, ...] = ()  # relations whose statistics were dropped: dropped relations, by OID
    database: int | None = None  # the database of dropped_oids


@dataclass(frozen=True)
class Point:
    """A named restore point (pg_create_restore_point): name and position."""

    name: str
    lsn: str
    after: datetime | None = None  # the time of the last transaction that ended before it (the record has none)


Event = Change | Created | End | Point


@dataclass(frozen=True)
class Table:
    """A table as the live catalog knows it: its OID and its heaps' file nodes (a partitioned table: each
    partition's)."""

    name: str
    oid: int
    nodes: frozenset[RelNode]


@dataclass
class TxnChange:
    """One committed transaction that changed the table."""

    xid: int
    commit_time: datetime
    lsn: str
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    truncated: bool = False
    dropped: bool = False
    rewritten: bool = False
    subxacts: tuple[int, ...] = ()
    file_nodes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.inserts + self.updates + self.deletes


@dataclass(frozen=True)
class Keep:
    """Which file nodes' row changes a scan keeps, as plain data (sent to the decoding processes): ``nodes``,
    and in ``database`` every file node not in ``live`` (the files no live relation has: a table's files before
    a rewrite); ``live`` None: every file node of ``database``."""

    nodes: frozenset[RelNode] = frozenset()
    database: int | None = None
    live: frozenset[int] | None = None

    def __call__(self, n: RelNode) -> bool:
        return n in self.nodes or (n[1] == self.database and (self.live is None or n[2] not in self.live))


def node_name(n: RelNode) -> str:
    return f"{n[0]}/{n[1]}/{n[2]}"


KINDS = ("insert", "update", "delete", "page")


@dataclass
class Collector:
    """What a scan keeps, aggregated as the records stream by (the WAL of a day can hold millions of records):
    per transaction and file node, the rows inserted, updated and deleted and the pages written; the file nodes
    each transaction created; the ends of the transactions that matter. ``keep`` says which
    file nodes are worth counting (the table's own, and those the live catalog no longer knows: a rewritten or
    dropped table's old files); the rows of aborted transactions are forgotten at their abort."""

    keep: Callable[[RelNode], bool] = field(default=lambda n: True)
    # a committed transaction that touched only these (the table's live files) and nothing else worth
    # following is dropped at its commit when ``small`` says so (fewer rows than asked for, outside the range)
    mine: frozenset[RelNode] = frozenset()
    small: Callable[[End, int], bool] | None = None
    changes: dict[int, dict[RelNode, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    created: dict[int, list[RelNode]] = field(default_factory=lambda: defaultdict(list))  # in creation order
    ends: list[End] = field(default_factory=list)
    node_records: dict[RelNode, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, e: Event) -> None:
        if isinstance(e, Change):
            if self.keep(e.node):
                counts = self.changes[e.xid].setdefault(e.node, [0, 0, 0, 0])
                counts[KINDS.index(e.kind)] += e.rows
                if e.kind != "page":
                    self.node_records[e.node] += 1
        elif isinstance(e, Created):
            self.created[e.xid].append(e.node)
        elif isinstance(e, End):
            self._end(e)

    def _end(self, e: End) -> None:
        xids = self.of(e)
        if not e.committed:
            for x in xids:
                self.changes.pop(x, None)
                self.created.pop(x, None)
            return
        if not (e.dropped_nodes or e.dropped_oids or any(x in self.changes or x in self.created for x in xids)):
            return
        if self.small is not None and not e.dropped_nodes and not any(x in self.created for x in xids):
            touched = [(n, c) for x in xids for n, c in self.changes.get(x, {}).items()]
            if all(n in self.mine for n, _c in touched) and self.small(e, sum(sum(c[:3]) for _n, c in touched)):
                for x in xids:
                    self.changes.pop(x, None)
                return
        self.ends.append(e)

    def of(self, end: End) -> list[int]:
        return [end.xid, *end.subxacts]

    def rows(self, end: End, nodes: set[RelNode]) -> dict[RelNode, list[int]]:
        """The counts of a committed transaction (and its subtransactions) on ``nodes``."""
        out: dict[RelNode, list[int]] = {}
        for x in self.of(end):
            for node, counts in self.changes.get(x, {}).items():
                if node in nodes:
                    mine = out.setdefault(node, [0, 0, 0, 0])
                    for i, c in enumerate(counts):
                        mine[i] += c
        return out


def collect(events: list[Event], keep: Callable[[RelNode], bool] | None = None,
            small: Callable[[End, int], bool] | None = None, mine: frozenset[RelNode] = frozenset()) -> Collector:
    c = Collector(keep, mine, small) if keep is not None else Collector(mine=mine, small=small)
    for e in events:
        c.add(e)
    return c


def table_history(seen: Collector, table: Table, *, forward: bool = False) -> list[TxnChange]:
    """The committed transactions that changed ``table``, in commit order. ``table.nodes`` are its files now
    (the live catalog: followed back through each rewrite), or, ``forward``, at the start of the range (a copy
    recovered to then: followed forward, for a table dropped or re-created since)."""
    rewrites = _forward(seen, table) if forward else _backward(seen, table)
    nodes = set(table.nodes) | {n for pair in rewrites.values() for n in pair}
    out = []
    for end in seen.ends:
        t = _txn(end, seen, nodes, rewrites.get(end.xid), table.oid)
        if t is not None:
            out.append(t)
    return out


def _backward(seen: Collector, table: Table) -> dict[int, tuple[RelNode, RelNode]]:
    """xid -> (old file, new file) of each rewrite, newest first from the files the table has now."""
    nodes = set(table.nodes)
    rewrites: dict[int, tuple[RelNode, RelNode]] = {}
    for end in reversed(seen.ends):
        made = {n for x in seen.of(end) for n in seen.created.get(x, [])}
        new = next(iter(made & nodes), None)
        if new is None or not end.dropped_nodes:
            continue
        old = _previous(end, seen)
        if old is not None:
            nodes.add(old)
            rewrites[end.xid] = (old, new)
    return rewrites


def _forward(seen: Collector, table: Table) -> dict[int, tuple[RelNode, RelNode]]:
    """xid -> (old file, new file) of each rewrite, oldest first from the files the table had at the start: a
    transaction that drops one of them and creates files gave the table the first file it created (PostgreSQL
    creates the new heap before its TOAST table and indexes)."""
    nodes = set(table.nodes)
    rewrites: dict[int, tuple[RelNode, RelNode]] = {}
    for end in seen.ends:
        old = next((n for n in end.dropped_nodes if n in nodes), None)
        made = [n for x in seen.of(end) for n in seen.created.get(x, [])]
        if old is not None and made and table.oid not in end.dropped_oids:
            nodes.add(made[0])
            rewrites[end.xid] = (old, made[0])
    return rewrites


def _previous(end: End, seen: Collector) -> RelNode | None:
    """The heap's file node before a rewrite: of the file nodes the rewrite dropped, the one with the most row
    changes in the range (indexes have none; a toast table fewer). None: none had any (nothing to attribute)."""
    scored = [(seen.node_records.get(n, 0), n) for n in end.dropped_nodes]
    scored = [s for s in scored if s[0] > 0]
    return max(scored)[1] if scored else None


def _txn(end: End, seen: Collector, nodes: set[RelNode], rewrite: tuple[RelNode, RelNode] | None,
         oid: int) -> TxnChange | None:
    mine = seen.rows(end, nodes)
    dropped = oid in end.dropped_oids
    if not mine and rewrite is None and not dropped:
        return None
    t = TxnChange(end.xid, end.time, end.lsn, subxacts=end.subxacts, dropped=dropped,
                  file_nodes=sorted(node_name(n) for n in mine))
    t.inserts = sum(c[0] for c in mine.values())
    t.updates = sum(c[1] for c in mine.values())
    t.deletes = sum(c[2] for c in mine.values())
    if rewrite is not None:
        t.rewritten = True
        old, new = rewrite
        t.truncated = new not in mine  # no rows and no page images went into the new file
        t.file_nodes = sorted({*t.file_nodes, node_name(old), node_name(new)})
    return t


@dataclass
class EndFinder:
    """A sink that keeps only the end of one transaction (``--before-xid``)."""

    xid: int
    found: End | None = None

    def add(self, e: Event) -> None:
        if self.found is None and isinstance(e, End) and (e.xid == self.xid or self.xid in e.subxacts):
            self.found = e


def end_of(events: list[Event], xid: int) -> End | None:
    """The commit or abort record that ended transaction ``xid``: its own, or its top-level transaction's (a
    subtransaction's xid is listed in its parent's commit record)."""
    f = EndFinder(xid)
    for e in events:
        f.add(e)
    return f.found

