"""On the scratch copy: the named tables copied into a new schema, created and filled as their owner (or, when
that cannot be, without any owner code), with the rows a known bad transaction deleted or changed beside each;
and what loading them elsewhere must run first (the load header)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from opsd.actions.restore.plan import REFUSE
from opsd.actions.targeted.owners import LoadAs, kind_verdicts, load_as, stripped_items, unlogged_note, victims_name
from opsd.core.relname import RESTORE
from opsd.db import tablecopy
from opsd.db.connection import Conn
from opsd.db.tablecopy import QName
from opsd.db.targeted import domain_columns, lookup, owner_code, table_facts
from opsd.errors import RefusedError


@dataclass
class SideCopy:
    schema: str
    load_as: LoadAs
    header: str = ""  # the statements that go before the dump when it is loaded
    tables: list[QName] = field(default_factory=list)  # the tables restored, as the copy's catalog names them
    dumped: list[QName] = field(default_factory=list)  # the copies and the victims tables, in dump order
    victims: dict[str, int] = field(default_factory=dict)  # table -> rows the bad transaction deleted or changed
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def make_copies(conn: Conn, given: tuple[QName, ...], schema: str, xids: tuple[int, ...],
                report: Callable[[str], None], *, dbname: str) -> SideCopy:
    """Every table must exist at the target time and be a table (resolved on the copy's catalog, as
    core/relname.py says); each goes into the new schema."""
    tablecopy.pin(conn)
    tables = _resolve(conn, given, dbname)
    facts = table_facts(conn, [tablecopy.regclass(conn, t) for t in tables])
    refused = [v.message for v in kind_verdicts(facts) if v.level == REFUSE]
    if refused:
        raise RefusedError("; ".join(refused) + " (at the target time); production was not touched")
    la = load_as(facts)
    out = SideCopy(schema, la, tables=list(tables),
                   warnings=[unlogged_note(f.name) for f in facts if f.persistence == "u"])
    names = {t.table for t in tables}
    tablecopy.create_schema(conn, schema, la.owner)
    for t in tables:
        target = QName(schema, t.table)
        with tablecopy.acting_as(conn, la.owner):
            tablecopy.copy_into(conn, t, target)
            if la.stripped:
                out.dropped += _strip(conn, target, str(t))
            rows = tablecopy.fill(conn, t, target)
            out.dumped.append(target)
            if xids:
                _victims(conn, out, t, names, xids)
        report(f"recovered {t}: {rows} row(s)" + (f", {out.victims[str(t)]} of them deleted or changed by "
                                                  f"transaction {xids[0]}" if xids else ""))
    out.header = tablecopy.load_header(conn, schema, la.owner)
    return out


def _resolve(conn: Conn, given: tuple[QName, ...], dbname: str) -> tuple[QName, ...]:
    found = [(t, lookup(conn, t.given(), dbname, purpose=RESTORE)) for t in given]
    missing = [str(t) for t, c in found if c is None]
    if missing:
        raise RefusedError(f"table {', '.join(missing)} does not exist at the target time (in the recovered copy "
                           f"of database {dbname}); production was not touched")
    tables = tuple(QName(c.schema, c.name) for _t, c in found if c is not None)
    names = [t.table for t in tables]
    if len(set(names)) < len(names):
        raise RefusedError(f"two tables named {sorted(n for n in names if names.count(n) > 1)[0]!r} at the target "
                           "time: they cannot share one schema; restore them separately")
    return tables


def _victims(conn: Conn, out: SideCopy, t: QName, names: set[str], xids: tuple[int, ...]) -> None:
    vname = victims_name(t.table, xids[0])
    if vname in names:
        raise RefusedError(f"{out.schema}.{vname} would hold the rows transaction {xids[0]} changed in {t}, but a "
                           "table of that name is restored too: restore them separately")
    target = QName(out.schema, vname)
    out.victims[str(t)] = tablecopy.victims_into(conn, t, target, xids)
    if out.load_as.stripped:
        _strip(conn, target, str(target))
    out.dumped.append(target)


def _strip(conn: Conn, t: QName, shown: str) -> list[str]:
    """Drop what runs owner code from the copy ``t`` (still empty): CHECK constraints, expression and partial
    indexes, exclusion constraints on expressions; domain columns with CHECKs become their base types."""
    name = tablecopy.regclass(conn, t)
    code, domains = owner_code(conn, name), domain_columns(conn, name)
    for c in code:
        if c.kind == "index":
            tablecopy.drop_index(conn, t, c.name)
        else:
            tablecopy.drop_constraint(conn, t, c.name)
    for d in domains:
        tablecopy.column_type(conn, t, d.name, d.base_type)
    return stripped_items(shown, code, domains)
