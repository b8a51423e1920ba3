"""Whose rights a side restore acts with (pure). A table's CHECK constraints, expression and partial indexes and
domain CHECKs run code its owner wrote whenever rows are written or indexed: opsd creates and fills the copies,
and loads them into production, as that owner (SET ROLE), so that code never runs with opsd's rights. When it
cannot (tables of several owners into one schema, or an owner opsd's role may not become), the copies carry
none of that code: every CHECK constraint and expression or partial index is dropped and domain columns are
stored as their base types, each named in the plan and the result."""

from __future__ import annotations

from dataclasses import dataclass

from opsd.actions.restore.plan import REFUSE, WARN, Verdict
from opsd.db.targeted import CodeRow, DomainRow, FactRow
from opsd.errors import UsageError

TABLE_KINDS = {"r": "table", "p": "partitioned table"}
KIND_NAMES = {"v": "a view", "m": "a materialized view", "f": "a foreign table (reading it reaches another server)",
              "S": "a sequence", "c": "a composite type", "i": "an index", "I": "an index", "t": "a TOAST table"}
MAX_IDENT = 63  # bytes: NAMEDATALEN - 1


@dataclass(frozen=True)
class LoadAs:
    """``owner``: the role the copies are created, filled and loaded as (and the new schema's owner); None: the
    loading role itself, and then the copies carry no owner code (``why`` says why not as the owner)."""

    owner: str | None
    why: str | None = None

    @property
    def stripped(self) -> bool:
        return self.owner is None


def load_as(facts: list[FactRow]) -> LoadAs:
    owners = sorted({f.owner for f in facts})
    if len(owners) == 1 and all(f.can_become for f in facts):
        return LoadAs(owners[0])
    if len(owners) > 1:
        by = ", ".join(f"{f.name}: {f.owner}" for f in facts)
        return LoadAs(None, f"the tables have different owners ({by}) and go into one schema")
    if not owners:
        return LoadAs(None, "no table found")
    return LoadAs(None, f"opsd's role may not SET ROLE to {owners[0]}, the tables' owner")


def check_identifier(name: str, what: str) -> None:
    """A name PostgreSQL keeps as given (quoted): not empty, no NUL, at most 63 bytes (longer is truncated)."""
    if not name:
        raise UsageError(f"{what}: give a name")
    if "\x00" in name:
        raise UsageError(f"{what} {name!r}: a name cannot hold a NUL character")
    if len(name.encode()) > MAX_IDENT:
        raise UsageError(f"{what} {name!r}: at most {MAX_IDENT} bytes ({len(name.encode())} given)")


def victims_name(table: str, xid: int) -> str:
    """The table that holds the rows transaction ``xid`` deleted or changed: ``<table>$xid<N>``, the table name
    cut (whole characters) so that it fits in 63 bytes."""
    suffix = f"$xid{xid}"
    room = MAX_IDENT - len(suffix)
    cut = table
    while len(cut.encode()) > room:
        cut = cut[:-1]
    return cut + suffix


def kind_verdicts(facts: list[FactRow]) -> list[Verdict]:
    """Temporary tables and other relation kinds are refused; unlogged ones come back empty."""
    out = []
    for f in facts:
        if f.persistence == "t":
            out.append(Verdict(REFUSE, f"{f.name} is a temporary table: it lives in one session only and is never "
                                       "in a backup"))
        elif f.kind not in TABLE_KINDS:
            out.append(Verdict(REFUSE, f"{f.name} is {KIND_NAMES.get(f.kind, f'of kind {f.kind!r}')}, not a table"))
        elif f.persistence == "u":
            out.append(Verdict(WARN, unlogged_note(f.name)))
    return out


def unlogged_note(name: str) -> str:
    return (f"{name} is UNLOGGED: its rows are never written to the WAL and a backup holds none of them, so its "
            "recovered copy is empty; 0 rows is not what it held at the target")


def stripped_items(table: str, code: list[CodeRow], domains: list[DomainRow]) -> list[str]:
    """What a copy without owner code loses, one line each (for the plan and the result)."""
    kinds = {"check": "CHECK constraint", "index": "index", "constraint": "exclusion constraint"}
    out = [f"{table}: {kinds.get(c.kind, c.kind)} {c.name} dropped ({c.detail})" for c in code]
    return out + [f"{table}: column {d.name} stored as {d.base_type} (its domain's CHECK dropped)" for d in domains]


def load_verdicts(la: LoadAs, dropped: list[str]) -> list[Verdict]:
    if la.owner is not None:
        return [Verdict("ok", f"the copies are created, filled and loaded as {la.owner}, the tables' owner (SET "
                              "ROLE): their CHECKs and index expressions run with the owner's rights, never opsd's")]
    head = Verdict(WARN, f"{la.why}: the copies are made as the loading role, without owner code (CHECK "
                         "constraints, expression and partial indexes and domain CHECKs dropped)"
                         + ("" if dropped else "; this table has none"))
    return [head] + [Verdict(WARN, d) for d in dropped]
