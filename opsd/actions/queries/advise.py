"""Missing indexes, proven where PostgreSQL can prove them (docs/queries.md, "Missing indexes"): for each table read
mostly by large sequential scans, the candidates pg_qualstats' filters suggest, each checked with a hypothetical
index (hypopg) against the real normalised statements that filter so: EXPLAIN of the statement's generic plan,
on a connection as [queries] advice_user (never opsd's own: planning runs the statement's functions, which could
RESET ROLE; refused when that role could do more than an application's), as the statement's own role, in a
read-only transaction that is rolled back, under [queries] snapshot_timeout. A statement that calls a function
outside pg_catalog is not EXPLAINed.
"proven": the plan uses the hypothetical index and its cost drops; otherwise a "guess", with why."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsd.actions.queries.catalog import Catalog
from opsd.core.queries.missing import (
    Candidate,
    TableLoad,
    already_indexed,
    calls_outside,
    candidates,
    create_statements,
    plan_cost,
    plan_indexes,
)
from opsd.core.records.indexes import IndexAdvice, MissingIndex, StatementRef
from opsd.core.relname import fold
from opsd.errors import DatabaseError

if TYPE_CHECKING:
    from opsd.db.connection import Conn, ConnectTo

TextKey = tuple[str, int, str]  # dbname, queryid, role
MAX_CANDIDATES = 5  # per table: each costs two EXPLAINs per statement
MAX_STATEMENTS = 5  # per candidate


@dataclass(frozen=True)
class Tried:
    """One statement EXPLAINed without and with the hypothetical index (None: not explained, ``why``)."""

    before: float | None = None
    after: float | None = None
    used: bool = False
    size: int | None = None
    why: str = ""


def missing_indexes(connect: ConnectTo | None, cat: Catalog, heavy: Sequence[TableLoad],
                    texts: Mapping[TextKey, StatementRef], *, refused: str = "") -> list[MissingIndex]:
    """Each heavily scanned table with its statements and advice. ``connect``: connections as [queries]
    advice_user, None when advice is not wanted or ``refused`` (why: every candidate a guess, with it)."""
    cands = candidates(cat.quals)
    taken = {(ix.dbname, ix.schema, ix.name) for ix in cat.indexes}
    out = []
    for t in heavy:
        mine = [c for c in cands if (c.dbname, c.schema, c.table_name) == (t.dbname, t.schema, t.table_name)
                and already_indexed(c, cat.indexes) is None][:MAX_CANDIDATES]
        stmts = _statements(t, mine, texts)
        note = "" if mine else _no_candidate(cat, t)
        advice = _advise(connect, cat, t.dbname, mine, texts=texts, taken=taken, refused=refused) if mine else []
        out.append(MissingIndex(dbname=t.dbname, schema=t.schema, table_name=t.table_name, seq_scan=t.seq_scan,
                                seq_tup_read=t.seq_tup_read, idx_scan=t.idx_scan, rows_per_scan=t.rows_per_scan,
                                size_bytes=t.size_bytes, statements=stmts, advice=advice, note=note))
    return out


def _no_candidate(cat: Catalog, t: TableLoad) -> str:
    if cat.schema_of(t.dbname, "pg_qualstats") is None:
        return (f"pg_qualstats is not installed in {t.dbname}: which columns the scans filter on is not known "
                "(the statements below name the table)")
    return "pg_qualstats sampled no filter on it that a btree index could serve (or one already exists)"


def _statements(t: TableLoad, mine: Sequence[Candidate], texts: Mapping[TextKey, StatementRef]
                ) -> list[StatementRef]:
    """The statements whose filters made a candidate; without any, those whose text names the table."""
    keys = {(t.dbname, q, r) for c in mine for q, r in c.statements}
    if keys:
        found = [texts[k] for k in keys if k in texts]
    else:
        found = [s for (db, _, _), s in texts.items()
                 if db == t.dbname and (s.calls or 0) > 0 and _names(s.text, t.table_name)]
    return sorted(found, key=lambda s: (-(s.calls or 0), s.queryid))[:10]


def _names(text: str, table: str) -> bool:
    """Whether the statement names the table: quoted exactly, or unquoted in any case (PostgreSQL folds an
    unquoted name to lower case, so only a lower-case table can be named so)."""
    if f'"{table.replace(chr(34), chr(34) * 2)}"' in text:
        return True
    return any(fold(w) == table for w in re.findall(r'(?<![\w"$])[A-Za-z_][\w$]*', text))


def _why_not(connect: ConnectTo | None, hypopg: str | None, dbname: str, refused: str) -> str:
    if refused:
        return refused
    if connect is None:
        return "not asked (--no-advice)"
    return f"hypopg is not installed in {dbname}" if hypopg is None else ""


def _open(connect: ConnectTo, dbname: str) -> tuple[Conn, frozenset[str]]:
    """A connection as advice_user, checked before anything else (refused: hypo.Refused), and the names of the
    database's functions outside pg_catalog."""
    from opsd.db import hypo

    conn = connect(dbname)
    try:
        hypo.check_advice_user(conn)
        return conn, hypo.functions(conn)
    except BaseException:
        conn.close()
        raise


def _advise(connect: ConnectTo | None, cat: Catalog, dbname: str, mine: Sequence[Candidate], *,
            texts: Mapping[TextKey, StatementRef], taken: set[tuple[str, str, str]], refused: str = ""
            ) -> list[IndexAdvice]:
    from opsd.db.hypo import Refused

    hypopg = cat.schema_of(dbname, "hypopg")
    why = _why_not(connect, hypopg, dbname, refused)
    names = {n for (db, _, n) in taken if db == dbname}
    made = [(c, create_statements(c, [p for p in cat.partitions if p.dbname == dbname], names)) for c in mine]
    if why or connect is None or hypopg is None:
        return [_advice(c, statements, [], why) for c, statements in made]
    out: list[IndexAdvice] = []
    conn: Conn | None = None
    try:
        for c, statements in made:
            if conn is None or conn.closed:
                conn, functions = _open(connect, dbname)
            tried = [_try(conn, hypopg, c, texts.get((dbname, q, r)), q, functions=functions)
                     for q, r in c.statements[:MAX_STATEMENTS]]
            out.append(_advice(c, statements, tried, ""))
    except Refused as e:
        out += [_advice(c, statements, [], f"not EXPLAINed: {e}") for c, statements in made[len(out):]]
    except DatabaseError as e:  # the database went away between the catalog and the advice
        out += [_advice(c, statements, [], f"could not be explained: {e}") for c, statements in made[len(out):]]
    finally:
        if conn is not None:
            conn.close()
    return out


def _try(conn: Conn, hypopg: str, c: Candidate, stmt: StatementRef | None, queryid: int, *,
         functions: frozenset[str]) -> Tried:
    from opsd.db import hypo

    if stmt is None:
        return Tried(why=f"statement {queryid}: its normalised text is not in opsd's snapshots")
    if called := calls_outside(stmt.text, functions):
        return Tried(why=f"statement {queryid}: not EXPLAINed: it calls {called}(), a function outside pg_catalog "
                         "(planning may run it)")
    try:
        with hypo.rolled_back(conn, hypopg):
            hypo.act_as(conn, stmt.rolname)
            before = hypo.explain(conn, "opsd_ix_before", stmt.text)
            made = hypo.hypothetical(conn, hypopg, c.definition())
            after = hypo.explain(conn, "opsd_ix_after", stmt.text)
            size = hypo.hypothetical_size(conn, hypopg, made.oid)
    except hypo.NotMember as e:
        return Tried(why=f"statement {queryid}: {e}")
    except DatabaseError as e:
        return Tried(why=f"statement {queryid} (role {stmt.rolname}) could not be explained: {e}")
    return _judge(before, after, made.name, size, queryid)


def _judge(before: Any, after: Any, name: str, size: int | None, queryid: int) -> Tried:
    cost_before, cost_after = plan_cost(before), plan_cost(after)
    used = name in plan_indexes(after)
    why = "" if used and cost_after < cost_before else (
        f"statement {queryid}: the plan does not use it" if not used else
        f"statement {queryid}: the plan uses it but its cost does not drop ({cost_before:.0f} -> {cost_after:.0f})")
    return Tried(before=cost_before, after=cost_after, used=used, size=size, why=why)


def _advice(c: Candidate, statements: list[str], tried: Sequence[Tried], why: str) -> IndexAdvice:
    proven = [t for t in tried if not t.why and t.before is not None and t.after is not None]
    sizes = [t.size for t in tried if t.size is not None]
    columns, queryids = list(c.columns), [q for q, _ in c.statements]
    size = sizes[0] if sizes else None
    if not proven:
        reasons = [why] if why else [t.why for t in tried] or ["no statement to explain"]
        return IndexAdvice(columns=columns, verdict="guess", reason="; ".join(reasons), statements=statements,
                           queryids=queryids, size_bytes=size)
    best = max(proven, key=lambda t: (t.before or 0.0) - (t.after or 0.0))
    before, after = best.before or 0.0, best.after or 0.0
    return IndexAdvice(columns=columns, verdict="proven", statements=statements, queryids=queryids,
                       cost_before=before, cost_after=after, size_bytes=size,
                       reason=f"the plan of {len(proven)} of {len(tried)} statement(s) uses it; cost {before:.0f} "
                              f"-> {after:.0f} (-{before - after:.0f})")
