"""What the WAL says a table went through (pure): row changes by transaction, rewrites, truncations and drops.

The events come from pg_waldump (adapters/walscan.py); the table's identity from the live catalog (its OID and
the file nodes its heap has now). A rewrite (TRUNCATE, VACUUM FULL, CLUSTER, an ALTER TABLE that rewrites) gives
the heap a new file node: the old one is found by walking the range backwards from the file node the catalog
knows, through each transaction that created it and dropped others when it committed.
"""

from __future__ import annotations

from collections import defaultdict
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
    lsn: str


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


def node_name(n: RelNode) -> str:
    return f"{n[0]}/{n[1]}/{n[2]}"


@dataclass
class _Seen:
    """Everything the scan saw, indexed."""

    changes: dict[int, list[Change]] = field(default_factory=lambda: defaultdict(list))
    created: dict[int, set[RelNode]] = field(default_factory=lambda: defaultdict(set))
    ends: list[End] = field(default_factory=list)
    node_records: dict[RelNode, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, e: Event) -> None:
        if isinstance(e, Change):
            self.changes[e.xid].append(e)
            if e.kind != "page":
                self.node_records[e.node] += 1
        elif isinstance(e, Created):
            self.created[e.xid].add(e.node)
        elif isinstance(e, End):
            self.ends.append(e)

    def of(self, end: End) -> list[int]:
        return [end.xid, *end.subxacts]


def table_history(events: list[Event], table: Table) -> list[TxnChange]:
    """The committed transactions that changed ``table``, in commit order."""
    seen = _Seen()
    for e in events:
        seen.add(e)
    commits = [e for e in seen.ends if e.committed]
    nodes = set(table.nodes)
    rewrites: dict[int, tuple[RelNode, RelNode]] = {}  # xid -> (old node, new node)
    for end in reversed(commits):  # newest first: follow the heap back through each rewrite
        made = set().union(*(seen.created.get(x, set()) for x in seen.of(end)))
        new = next(iter(made & nodes), None)
        if new is None or not end.dropped_nodes:
            continue
        old = _previous(end, seen)
        if old is not None:
            nodes.add(old)
            rewrites[end.xid] = (old, new)
    out = []
    for end in commits:
        t = _txn(end, seen, nodes, rewrites.get(end.xid), table.oid)
        if t is not None:
            out.append(t)
    return out


def _previous(end: End, seen: _Seen) -> RelNode | None:
    """The heap's file node before a rewrite: of the file nodes the rewrite dropped, the one with the most row
    changes in the range (indexes have none; a toast table fewer). None: none had any (nothing to attribute)."""
    scored = [(seen.node_records.get(n, 0), n) for n in end.dropped_nodes]
    scored = [s for s in scored if s[0] > 0]
    return max(scored)[1] if scored else None


def _txn(end: End, seen: _Seen, nodes: set[RelNode], rewrite: tuple[RelNode, RelNode] | None,
         oid: int) -> TxnChange | None:
    mine = [c for x in seen.of(end) for c in seen.changes.get(x, []) if c.node in nodes]
    dropped = oid in end.dropped_oids
    if not mine and rewrite is None and not dropped:
        return None
    t = TxnChange(end.xid, end.time, end.lsn, subxacts=end.subxacts, dropped=dropped,
                  file_nodes=sorted({node_name(c.node) for c in mine}))
    for c in mine:
        if c.kind == "insert":
            t.inserts += c.rows
        elif c.kind == "update":
            t.updates += c.rows
        elif c.kind == "delete":
            t.deletes += c.rows
    if rewrite is not None:
        t.rewritten = True
        new = rewrite[1]
        t.truncated = not any(c.node == new for c in mine)
        t.file_nodes = sorted({*t.file_nodes, node_name(rewrite[0]), node_name(new)})
    return t


def unknown_drops(events: list[Event], database: int, known_oids: set[int]) -> list[TxnChange]:
    """Committed transactions that dropped relations the live catalog does not know (in ``database``): what the
    WAL can say about a table that no longer exists, by file node."""
    seen = _Seen()
    for e in events:
        seen.add(e)
    out = []
    for end in (e for e in seen.ends if e.committed):
        # a rewrite's transient heap (VACUUM FULL, CLUSTER, ALTER TABLE) is made and dropped in one transaction,
        # its OID the file node it was made with: not a table anyone dropped
        made = {n[2] for x in seen.of(end) for n in seen.created.get(x, set())}
        gone = [o for o in end.dropped_oids if o not in known_oids and o not in made and end.database == database]
        heaps = [n for n in end.dropped_nodes if n[1] == database and seen.node_records.get(n, 0) > 0]
        if gone:
            out.append(TxnChange(end.xid, end.time, end.lsn, dropped=True, subxacts=end.subxacts,
                                 file_nodes=sorted(node_name(n) for n in heaps or end.dropped_nodes)))
    return out


def end_of(events: list[Event], xid: int) -> End | None:
    """The commit or abort record that ended transaction ``xid``: its own, or its top-level transaction's (a
    subtransaction's xid is listed in its parent's commit record)."""
    return next((e for e in events if isinstance(e, End) and (e.xid == xid or xid in e.subxacts)), None)


def points(events: list[Event]) -> list[Point]:
    return [e for e in events if isinstance(e, Point)]
