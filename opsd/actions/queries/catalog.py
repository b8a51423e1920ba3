"""What ``opsd indexes`` reads of the catalogs, every database a client can connect to, one connection each under
[queries] snapshot_timeout and snapshot_lock_timeout: indexes, constraints never validated, partitions, and where
pg_qualstats is installed the filters it sampled. A database that cannot be read is a problem line, not an error;
the server that cannot be reached at all is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opsd.core.records.indexes import IndexInfo, NotValidConstraint, Partition, Qual
from opsd.errors import DatabaseError

if TYPE_CHECKING:
    from opsd.context import Context
    from opsd.db.connection import ConnectTo


@dataclass
class Catalog:
    databases: list[str] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)
    not_valid: list[NotValidConstraint] = field(default_factory=list)
    partitions: list[Partition] = field(default_factory=list)
    quals: list[Qual] = field(default_factory=list)
    extensions: dict[str, dict[str, str]] = field(default_factory=dict)  # dbname -> extension -> schema
    problems: list[str] = field(default_factory=list)
    walsenders: int | None = None  # physical standbys streaming from this primary (None: a standby, not checked)

    def schema_of(self, dbname: str, extension: str) -> str | None:
        return self.extensions.get(dbname, {}).get(extension)


def read_catalog(ctx: Context, dbnames: list[str] | None = None) -> Catalog:
    """Every connectable database's catalog (``dbnames``: only those). Raises when the server cannot be read."""
    from opsd.db import indexes as ix

    connect = ix.connect_to(ctx.settings)
    cat = Catalog()
    with connect(ctx.settings.postgres.dbname) as conn:
        found = ix.databases(conn)
        cat.walsenders = ix.walsenders(conn)
    for name in dbnames or []:
        if name not in found:
            cat.problems.append(f"database {name}: not found, or no client can connect to it")
    for dbname in [d for d in found if not dbnames or d in dbnames]:
        try:
            _read_one(connect, dbname, cat)
        except DatabaseError as e:
            cat.problems.append(f"database {dbname}: not read: {e}")
    return cat


def _read_one(connect: ConnectTo, dbname: str, cat: Catalog) -> None:
    from opsd.db import indexes as ix

    with connect(dbname) as conn:
        indexes = ix.indexes(conn, dbname)
        not_valid = ix.not_valid(conn, dbname)
        partitions = ix.partitions(conn, dbname)
        extensions = ix.extensions(conn)
        quals: list[Qual] = []
        if schema := extensions.get("pg_qualstats"):
            try:
                quals = ix.quals(conn, dbname, schema)
            except DatabaseError as e:  # not preloaded: its functions refuse
                cat.problems.append(f"database {dbname}: pg_qualstats not read: {e}")
    cat.databases.append(dbname)
    cat.indexes += indexes
    cat.not_valid += not_valid
    cat.partitions += partitions
    cat.quals += quals
    cat.extensions[dbname] = extensions
