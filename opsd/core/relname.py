"""A table named on the command line (pure): ``--table`` in SQL form or in plain form.

SQL form (any part double-quoted): read as PostgreSQL reads a qualified name (``to_regclass``, ``parse_ident``):
a quoted part keeps its case and may hold dots, spaces and ``""`` (one double quote); an unquoted part folds
to lower case (ASCII letters only, as PostgreSQL does in a UTF-8 database). ``'"Inventory"."StockMovements"'``
is the schema ``Inventory`` and the table ``StockMovements``; ``'"Inventory".stockmovements'`` is another table.

Plain form (no double quote at all): ``Inventory.StockMovements`` names the one relation whose schema and name
are these, ignoring case. Several relations that differ only by case: refused, each listed in SQL form.

Either way: exactly two parts, SCHEMA.TABLE (the database is ``--dbname``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from opsd.errors import RefusedError, UsageError

MAX_IDENT = 63  # bytes: NAMEDATALEN - 1; PostgreSQL truncates longer identifiers
_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")
FIND, RESTORE = "search", "restore"  # what a name is resolved for
QUOTING = "quoted parts keep their case, unquoted ones fold to lower case"
EXAMPLE = "give SCHEMA.TABLE, e.g. sc.stock_movements, or quoted to keep case: '\"Inventory\".\"StockMovements\"'"


@dataclass(frozen=True)
class RelName:
    """``exact``: the SQL form (match these names exactly); else the plain form (match ignoring case)."""

    schema: str
    name: str
    exact: bool = True

    def __str__(self) -> str:
        return sql_name(self.schema, self.name) if self.exact else f"{self.schema}.{self.name}"


def fold(part: str) -> str:
    """An unquoted identifier as PostgreSQL stores it: ASCII A-Z to lower case, other characters kept."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in part)


def truncate(part: str) -> str:
    """At most 63 bytes, cut on a whole character (PostgreSQL truncates a longer identifier so)."""
    while len(part.encode()) > MAX_IDENT:
        part = part[:-1]
    return part


def quote(part: str) -> str:
    """The identifier as SQL text: double-quoted (``"`` doubled) unless it is lower case letters, digits, ``_``
    and ``$`` (how ``--table`` and psql read it back to the same name)."""
    return part if _PLAIN_IDENT.match(part) else '"' + part.replace('"', '""') + '"'


def sql_name(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}"


def split(text: str) -> list[tuple[str, bool]]:
    """The dot-separated parts of ``text`` as (identifier, quoted), like PostgreSQL's SplitIdentifierString:
    white space around a part is ignored; a quoted part ends at a lone ``"``."""
    parts: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == '"':
            j, buf = i + 1, []
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise UsageError(f"invalid table {text!r}: unterminated double quote")
                buf.append(text[j:k])
                if text[k + 1:k + 2] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            part, quoted = "".join(buf), True
        else:
            j = i
            while i < n and text[i] != "." and not text[i].isspace() and text[i] != '"':
                i += 1
            part, quoted = text[j:i], False
        if not part:
            raise UsageError(f"invalid table {text!r}: an empty name; {EXAMPLE}")
        parts.append((part, quoted))
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            return parts
        if text[i] != ".":
            raise UsageError(f"invalid table {text!r}: unexpected {text[i]!r} after {part!r}; {EXAMPLE}")
        i += 1


def parse(text: str) -> RelName:
    """``--table`` as given: SQL form if any part is quoted, else plain form (see the module's doc)."""
    if "\x00" in text:
        raise UsageError(f"invalid table {text!r}: a name cannot hold a NUL character")
    parts = split(text)
    if len(parts) != 2:
        what = "a schema is missing" if len(parts) == 1 else f"{len(parts)} parts (the database is --dbname)"
        raise UsageError(f"invalid table {text!r}: {what}; {EXAMPLE}")
    exact = any(q for _p, q in parts)
    (schema, sq), (name, nq) = parts
    if not exact:
        return RelName(truncate(schema), truncate(name), exact=False)
    return RelName(truncate(schema if sq else fold(schema)), truncate(name if nq else fold(name)))


@dataclass(frozen=True)
class Candidate:
    """A relation whose schema and name match a plain-form name ignoring case, as the catalog knows it."""

    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind
    persistence: str  # p permanent, u unlogged, t temporary
    related: list[str] = field(default_factory=list)  # in SQL form: a view's tables, a partitioned table's
    # leaf partitions, a foreign table's server

    @property
    def shown(self) -> str:
        return sql_name(self.schema, self.name)


def matches(given: RelName, found: list[Candidate]) -> list[Candidate]:
    """Of the relations that match ``given`` ignoring case, those it names: exactly these names (SQL form), or
    all of them (plain form)."""
    if not given.exact:
        return found
    return [c for c in found if c.schema == given.schema and c.name == given.name]


def pick(given: RelName, found: list[Candidate], dbname: str, *, purpose: str) -> Candidate | None:
    """The relation ``given`` names among ``found`` (None: none), if it can serve ``purpose``; several, or one that
    cannot serve: RefusedError, one line naming what it matched and what to give instead."""
    named = matches(given, found)
    if len(named) > 1:
        shown = ", ".join(c.shown for c in named)
        raise RefusedError(f"{given} matches {len(named)} relations of {dbname} that differ only by case ({shown}): "
                           f"give one in SQL form, quoted, e.g. --table '{named[0].shown}'")
    if not named:
        return None
    why = refusal(named[0], purpose)
    if why is not None:
        raise RefusedError(why)
    return named[0]


def not_found(given: RelName, found: list[Candidate], dbname: str, where: str) -> str:
    head = f"no relation {given} in {where} of database {dbname}"
    if found:  # a name in SQL form whose case matches none of them
        return (f"{head}; with another case: {', '.join(c.shown for c in found)} ({QUOTING}): give it as shown, "
                f"e.g. --table '{found[0].shown}'")
    how = QUOTING if given.exact else "matched ignoring case"
    return f"{head} ({how}; check the name and --dbname)"


def refusal(c: Candidate, purpose: str) -> str | None:
    """Why ``c`` cannot be searched (``wal find``) or restored (``restore --table``), and what to give instead;
    None: it can."""
    rel = ", ".join(c.related)
    if c.persistence == "t":
        return f"{c.shown} is a temporary table: it lives in one session and is never in the WAL or a backup"
    if c.persistence == "u" and purpose == FIND:
        return (f"{c.shown} is UNLOGGED: its row changes are never written to the WAL, so the WAL cannot say who "
                "changed it")
    if c.kind == "r" or (c.kind == "m" and purpose == FIND):
        return None
    if c.kind == "p":
        if c.related:
            return None  # every leaf partition: searched, or read into one table
        return f"{c.shown} is a partitioned table without partitions: it holds no rows (nothing to {purpose})"
    if c.kind == "v":
        return (f"{c.shown} is a view: it holds no rows of its own; give the table(s) it reads instead"
                + (f": {rel}" if rel else ""))
    if c.kind == "m":
        return (f"{c.shown} is a materialized view: restore the table(s) it reads" + (f" ({rel})" if rel else "")
                + f" and REFRESH MATERIALIZED VIEW {c.shown} from them")
    if c.kind == "f":
        return (f"{c.shown} is a foreign table: its rows live on the foreign server" + (f" {rel}" if rel else "")
                + ", not in this cluster's WAL or backups; search or restore the table there")
    kinds = {"S": "a sequence", "i": "an index", "I": "a partitioned index", "t": "a TOAST table",
             "c": "a composite type"}
    return f"{c.shown} is {kinds.get(c.kind, f'a relation of kind {c.kind!r}')}, not a table: give a table"
