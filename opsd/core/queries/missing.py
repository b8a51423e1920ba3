"""Missing indexes, pure (docs/queries.md, "Missing indexes"): the tables read mostly by sequential scans of many
rows each, the index candidates pg_qualstats' filters suggest for them, the statements that create one (a
partitioned table: ON ONLY the parent, each partition CONCURRENTLY, then ATTACH), and what an EXPLAIN plan says
of a hypothetical index (hypopg)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opsd.core.records.indexes import IndexInfo, Partition, Qual
from opsd.core.records.queries import TableActivity
from opsd.core.relname import fold, truncate

EQUALITY = 3
RANGE = (1, 2, 4, 5)
MAX_COLUMNS = 4


@dataclass(frozen=True)
class TableLoad:
    """A table's scans in the window, its partitions' summed in (a partition counts for its partition root)."""

    dbname: str
    schema: str
    table_name: str
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    size_bytes: int

    @property
    def rows_per_scan(self) -> int:
        return self.seq_tup_read // self.seq_scan if self.seq_scan else 0


def roots(partitions: Iterable[Partition]) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(dbname, schema, table) of each partition -> (schema, table) of its partition root."""
    return {(p.dbname, p.schema, p.table_name): (p.root_schema, p.root_table) for p in partitions}


def loads(activity: Iterable[TableActivity], partitions: Iterable[Partition]) -> list[TableLoad]:
    root = roots(partitions)
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for a in activity:
        schema, table = root.get((a.dbname, a.schemaname, a.relname), (a.schemaname, a.relname))
        s = sums[(a.dbname, schema, table)]
        for i, v in enumerate((a.seq_scan, a.seq_tup_read, a.idx_scan, a.size_bytes)):
            s[i] += v
    return [TableLoad(db, schema, table, *s) for (db, schema, table), s in sorted(sums.items())]


def seq_heavy(found: Iterable[TableLoad], rows_per_scan: int) -> list[TableLoad]:
    """Tables read mostly by sequential scans (more than by index scans) of more than ``rows_per_scan`` rows
    each on average, the most rows read first."""
    out = [t for t in found if t.seq_scan > t.idx_scan and t.rows_per_scan > rows_per_scan]
    return sorted(out, key=lambda t: (-t.seq_tup_read, t.dbname, t.schema, t.table_name))


def writes(activity: Iterable[TableActivity], partitions: Iterable[Partition]) -> dict[tuple[str, str, str], int]:
    """Rows inserted and updated in the window per table (a partition's under its partition root)."""
    root = roots(partitions)
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for a in activity:
        schema, table = root.get((a.dbname, a.schemaname, a.relname), (a.schemaname, a.relname))
        out[(a.dbname, schema, table)] += a.n_tup_ins + a.n_tup_upd
    return dict(out)


@dataclass(frozen=True)
class Candidate:
    """A btree index suggested by the filters of ``statements`` ((queryid, role) pairs) on one table: equality
    columns first (most rows filtered first), then one range column. ``columns``: as SQL; ``names``: raw."""

    dbname: str
    schema: str
    table_name: str
    table_ref: str
    schema_ref: str
    columns: tuple[str, ...]
    names: tuple[str, ...]
    statements: tuple[tuple[int, str], ...]
    filtered: int

    def definition(self) -> str:
        """As hypopg_create_index takes it (no name, no CONCURRENTLY)."""
        return f"CREATE INDEX ON {self.table_ref} USING btree ({', '.join(self.columns)})"


def _columns(quals: Sequence[Qual]) -> list[Qual]:
    eq = sorted((q for q in quals if q.strategy == EQUALITY), key=lambda q: (-q.filtered, q.column_name))
    rng = sorted((q for q in quals if q.strategy in RANGE), key=lambda q: (-q.filtered, q.column_name))
    out: list[Qual] = []
    for q in [*eq, *rng[:1]]:
        if q.column_name not in {o.column_name for o in out}:
            out.append(q)
    return out[:MAX_COLUMNS]


def candidates(quals: Iterable[Qual]) -> list[Candidate]:
    """One candidate per table and column list, with every statement whose filters make it; the most rows
    filtered first. Filters that never ran, or that no btree index can serve, make none."""
    per_statement: dict[tuple[str, str, str, int, str], list[Qual]] = defaultdict(list)
    for q in quals:
        if q.executions > 0:
            per_statement[(q.dbname, q.schema, q.table_name, q.queryid, q.rolname)].append(q)
    merged: dict[tuple[str, str, str, tuple[str, ...]], list[Any]] = {}
    for (db, schema, table, queryid, role), group in sorted(per_statement.items()):
        cols = _columns(group)
        if not cols:
            continue
        key = (db, schema, table, tuple(q.column_name for q in cols))
        entry = merged.setdefault(key, [group[0].table_ref, group[0].schema_ref, tuple(q.column_ref for q in cols),
                                        [], 0])
        entry[3].append((queryid, role))
        entry[4] += sum(q.filtered for q in group)
    out = [Candidate(db, schema, table, ref, sref, refs, names, tuple(stmts), filtered)
           for (db, schema, table, names), (ref, sref, refs, stmts, filtered) in merged.items()]
    return sorted(out, key=lambda c: (-c.filtered, c.dbname, c.schema, c.table_name, c.names))


def already_indexed(c: Candidate, indexes: Iterable[IndexInfo]) -> IndexInfo | None:
    """A valid btree index on the table, without predicate, whose leading keys are the candidate's columns."""
    for ix in indexes:
        if ((ix.dbname, ix.schema, ix.table_name) == (c.dbname, c.schema, c.table_name) and ix.method == "btree"
                and ix.valid and ix.predicate is None and tuple(ix.keys[:len(c.columns)]) == c.columns):
            return ix
    return None


def quote_always(name: str) -> str:
    """A name opsd makes up, as SQL: always double-quoted (right for any name, keywords included)."""
    return '"' + name.replace('"', '""') + '"'


def _name(table: str, names: Sequence[str], taken: set[str]) -> str:
    base, n = f"{table}_{'_'.join(names)}_idx", 0
    while True:
        name = truncate(base if n == 0 else f"{base}{n}")
        if name not in taken:
            taken.add(name)
            return name
        n += 1


def create_statements(c: Candidate, partitions: Sequence[Partition], taken: set[str]) -> list[str]:
    """CREATE INDEX CONCURRENTLY on a table; on a partitioned one (PostgreSQL 15 cannot build those
    concurrently): an invalid index ON ONLY the parent, each partition's built CONCURRENTLY (a sub-partitioned
    one ON ONLY) and attached, after which the parent's is valid. ``taken``: index names in use (grows)."""
    cols = ", ".join(c.columns)
    tree = [p for p in partitions if (p.dbname, p.root_schema, p.root_table) == (c.dbname, c.schema, c.table_name)]
    if not tree:
        return [f"CREATE INDEX CONCURRENTLY ON {c.table_ref} USING btree ({cols})"]
    own = quote_always(_name(c.table_name, c.names, taken))
    index_of = {c.table_ref: f"{c.schema_ref}.{own}"}
    out = [f"CREATE INDEX {own} ON ONLY {c.table_ref} USING btree ({cols})"]
    for p in tree:  # parents before their partitions (ix_partitions.sql orders by depth)
        own = quote_always(_name(p.table_name, c.names, taken))
        index_of[p.table_ref] = f"{p.schema_ref}.{own}"
        if p.partitioned:
            out.append(f"CREATE INDEX {own} ON ONLY {p.table_ref} USING btree ({cols})")
        else:
            out.append(f"CREATE INDEX CONCURRENTLY {own} ON {p.table_ref} USING btree ({cols})")
        out.append(f"ALTER INDEX {index_of[p.parent_ref]} ATTACH PARTITION {index_of[p.table_ref]}")
    return out


def plan_cost(plan: Any) -> float:
    """The total cost of an ``EXPLAIN (FORMAT JSON)`` plan."""
    return float(plan[0]["Plan"]["Total Cost"])


def plan_indexes(plan: Any) -> set[str]:
    """Every index a plan's nodes use."""
    found: set[str] = set()
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            found.add(str(node["Index Name"]))
        stack.extend(node.get("Plans", []))
    return found



_CALL = re.compile(r'("(?:[^"]|"")+"|[A-Za-z_][\w$]*)\s*\(')


def calls_outside(text: str, functions: Iterable[str]) -> str | None:
    """The first name in ``text`` followed by "(" that is the name of a function outside pg_catalog
    (``functions``, db/sql/ix_functions.sql), else None. Conservative: any such identifier counts, whatever its
    schema, arguments or place (a keyword, a string) in the statement; a quoted name keeps its case, an unquoted
    one folds to lower case."""
    names = set(functions)
    for m in _CALL.finditer(text):
        word = m.group(1)
        name = word[1:-1].replace('""', '"') if word.startswith('"') else fold(word)
        if name in names:
            return name
    return None
