"""The copy's state before the migration, compared with its state after the rollback: the schema (pg_dump
--schema-only, normalised; migration bookkeeping and opsd's own amcheck schema left out) and every table's rows
(a sorted file of row checksums per table, compared as a stream)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from opsd.context import Context
from opsd.core.records.rehearse import TableDiff
from opsd.core.rehearse.compare import multiset_diff, normalised
from opsd.db import rehearse as db
from opsd.db.connection import Conn
from opsd.errors import CommandError

IGNORED = ("opsd_amcheck", "COMMENT ON EXTENSION amcheck")


@dataclass(frozen=True)
class Where:
    socket: str
    port: int
    user: str  # the copy's superuser
    dbname: str


@dataclass
class Before:
    schema: list[str]
    rows: dict[str, Path] = field(default_factory=dict)  # table -> its sorted checksums


def bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"')


def dump_schema(ctx: Context, where: Where, out: Path) -> list[str]:
    """pg_dump --schema-only of the copy's database, normalised (core/rehearse/compare.py)."""
    pg = ctx.settings.postgres
    skip = [a for t in ctx.settings.rehearse.bookkeeping for a in ("-T", f"*.{t}", "-T", f"*.{t}_id_seq")]
    argv = [str(pg.bin_dir / "pg_dump"), "--schema-only", "-h", where.socket, "-p", str(where.port), "-U",
            where.user, "-d", where.dbname, "-N", "opsd_amcheck", *skip, "-f", str(out)]
    res = ctx.runner.run(argv, timeout=ctx.settings.drill.verify_statement_timeout.total_seconds(),
                         log_output=False)
    if not res.ok:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise CommandError(f"pg_dump --schema-only of the copy failed: {last}", argv=res.argv,
                           returncode=res.returncode)
    try:
        with open(out, encoding="utf-8", errors="replace") as f:
            return normalised(f, IGNORED)
    finally:
        out.unlink(missing_ok=True)


def compared_tables(ctx: Context, tables: dict[str, int]) -> list[str]:
    keep = set(ctx.settings.rehearse.bookkeeping)
    return [t for t in tables if bare(t) not in keep]


def save_rows(conn: Conn, tables: list[str], into: Path) -> dict[str, Path]:
    into.mkdir(mode=0o700, exist_ok=True)
    out = {}
    for i, t in enumerate(tables):
        path = into / f"{i}.txt"
        with open(path, "w", encoding="ascii") as f:
            for h in db.row_checksums(conn, t):
                f.write(h + "\n")
        out[t] = path
    return out


def _lines(path: Path) -> Iterator[str]:
    with open(path, encoding="ascii") as f:
        for line in f:
            yield line.rstrip("\n")


def compare_rows(conn: Conn, before: Before, present: set[str], changed: set[str]) -> list[TableDiff]:
    """Each table saved before: its rows now against then (``changed``: tables the migration itself wrote)."""
    out = []
    for t, path in before.rows.items():
        if t not in present:
            nb = sum(1 for _ in _lines(path))
            out.append(TableDiff(table=t, rows_before=nb, rows_after=None, missing=nb, extra=0,
                                 migration_changed=t in changed))
            continue
        nb, na, missing, extra = multiset_diff(_lines(path), db.row_checksums(conn, t))
        out.append(TableDiff(table=t, rows_before=nb, rows_after=na, missing=missing, extra=extra,
                             migration_changed=t in changed))
    return out

