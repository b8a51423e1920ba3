"""What the migration did, from the copy's catalog before and after it, the lock samples and the statement log:
relations rewritten, indexes built, constraints added, locks held (with what they block on production)."""

from __future__ import annotations

import re

from opsd.core.records.rehearse import ConstraintAdded, IndexBuilt, LockHeld, Rewrite, Statement
from opsd.core.rehearse.locks import Span, blocks
from opsd.core.rehearse.statements import creates_index
from opsd.db.rehearse import Snapshot

KINDS = {"r": "table", "m": "materialized view", "i": "index"}
CONSTRAINTS = {"f": "foreign key", "c": "check", "u": "unique", "p": "primary key", "x": "exclusion"}


def rewrites(before: Snapshot, after: Snapshot) -> list[Rewrite]:
    """Tables and materialized views whose file node changed (their indexes go with them: not listed), and an
    index rebuilt on its own."""
    out, tables = [], set()
    for oid, b in before.relations.items():
        a = after.relations.get(oid)
        if a is None or a.filenode == b.filenode or b.kind == "i":
            continue
        tables.add(b.name)
        out.append(Rewrite(relation=a.name, kind=KINDS.get(b.kind, b.kind), bytes_before=b.bytes,
                           bytes_after=a.bytes))
    for oid, b in before.relations.items():
        a = after.relations.get(oid)
        if a is not None and b.kind == "i" and a.filenode != b.filenode and b.table_name not in tables:
            out.append(Rewrite(relation=a.name, kind="index", bytes_before=b.bytes, bytes_after=a.bytes))
    return out


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"')


def indexes(before: Snapshot, after: Snapshot, statements: list[Statement], skip: frozenset[str] = frozenset()
            ) -> list[IndexBuilt]:
    """Indexes the migration built (those of the migration tool's bookkeeping tables, ``skip``, aside)."""
    concurrent = [s.text for s in statements if creates_index(s.text)]
    out = []
    for oid, a in after.relations.items():
        if a.kind != "i" or oid in before.relations or _bare(a.table_name or "") in skip:
            continue
        bare = _bare(a.name)
        conc = any(re.search(rf'(?<![\w$]){re.escape(bare)}(?![\w$])', t) for t in concurrent)
        out.append(IndexBuilt(index=a.name, table=a.table_name or "?", concurrently=conc, valid=a.valid,
                              bytes=a.bytes))
    return out


def constraints(before: Snapshot, after: Snapshot, statements: list[Statement],
                skip: frozenset[str] = frozenset()) -> list[ConstraintAdded]:
    out = []
    for oid, c in after.constraints.items():
        if oid in before.constraints or _bare(c.table_name) in skip:
            continue
        named = [s.text for s in statements if c.name in s.text]
        not_valid = not c.validated or any(re.search(r"\bNOT\s+VALID\b", t, re.I) for t in named)
        out.append(ConstraintAdded(name=c.name, table=c.table_name, kind=CONSTRAINTS.get(c.kind, c.kind),
                                   validated=c.validated, not_valid=not_valid))
    return out


def locks(spans: list[Span], before: Snapshot, phase: str, skip: frozenset[str] = frozenset()) -> list[LockHeld]:
    """Each table lock with its table's size and rows before the migration (None: the migration created it).
    An index's locks go with its table's (a table's ALTER locks each of its indexes too): not listed; nor are
    the migration tool's bookkeeping tables (``skip``)."""
    by_name = {r.name: r for r in before.relations.values()}
    out = []
    for s in spans:
        rel = by_name.get(s.relation)
        if (rel is not None and rel.kind == "i") or _bare(s.relation) in skip:
            continue
        out.append(LockHeld(relation=s.relation, mode=s.mode, seconds=round(s.held, 3), blocks=blocks(s.mode),
                            bytes=rel.bytes if rel else None, rows=rel.rows if rel else None,
                            statement=s.statement, phase=phase))
    return out


def touched(before: Snapshot, after: Snapshot, held: list[LockHeld]) -> list[str]:
    """The relations the migration rewrote, created or locked (tables and their indexes): amcheck's list."""
    names = {lk.relation for lk in held}
    names |= {a.name for oid, a in after.relations.items()
              if oid not in before.relations or before.relations[oid].filenode != a.filenode}
    tables = {n for n in names if any(r.name == n and r.kind != "i" for r in after.relations.values())}
    names |= {r.name for r in after.relations.values() if r.kind == "i" and r.table_name in tables}
    return sorted(n for n in names if any(r.name == n for r in after.relations.values()))
