"""What a drill does with each relation (pure): which checks apply to it, or why it is skipped; and the verdict
per relation and the counts per database once the checks ran.

A relation ends in exactly one of: checked (every check that applies passed), skipped (a reason that is not a
problem, ``SKIP_REASONS``), not checked (opsd's own tooling could not run a check there: a gap, never damage),
corrupt (a check found damage). Corrupt wins over not checked, which wins over checked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from opsd.core.records.drill import DatabaseCounts
from opsd.db.queries import RelationRow

NO_STORAGE = ("p", "I", "v", "c")  # partitioned tables and indexes, views, composite types: no data of their own
HEAPS = ("r", "m", "t", "S")  # verify_heapam (TOAST through check_toast too)
READS = ("r", "m", "S")  # read in full (COPY ... FROM ONLY: each partition and inheritance child once)


class Verdict(StrEnum):
    CHECKED = "checked"
    SKIPPED = "skipped"
    NOT_CHECKED = "not_checked"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class Plan:
    """The checks for one relation; ``skip``: the reason there are none."""

    amcheck: bool = False
    read: bool = False
    skip: str | None = None


def skip_reason(rel: RelationRow) -> str | None:
    """Why ``rel`` has no check, or None. The first reason that applies, in the order of ``SKIP_REASONS``."""
    if rel.kind in NO_STORAGE:
        return "no_storage"
    if rel.kind == "f":
        return "foreign_table"
    if rel.persistence == "u":  # restored empty by design (its init fork), as are its indexes and TOAST
        return "unlogged"
    if not rel.populated:  # a matview created WITH NO DATA and never refreshed, its indexes and TOAST
        return "not_populated"
    if rel.kind == "i" and not rel.valid:
        return "invalid_index"
    if rel.kind == "i" and rel.am != "btree":  # amcheck on PostgreSQL 15 checks B-tree indexes only
        return "access_method"
    return None


def plan(rel: RelationRow) -> Plan:
    reason = skip_reason(rel)
    if reason is not None:
        return Plan(skip=reason)
    return Plan(amcheck=rel.kind in HEAPS or rel.kind == "i", read=rel.kind in READS)


def verdict(planned: Plan, damaged: bool, gap: bool) -> Verdict:
    """The relation's verdict from what its checks found: ``damaged`` by any check, a ``gap`` in any."""
    if planned.skip is not None:
        return Verdict.SKIPPED
    if damaged:
        return Verdict.CORRUPT
    return Verdict.NOT_CHECKED if gap else Verdict.CHECKED


def count(database: str, rels: list[tuple[Plan, Verdict]]) -> DatabaseCounts:
    """One database's counts from every relation's plan and verdict."""
    out = DatabaseCounts(database=database)
    for planned, v in rels:
        if v is Verdict.SKIPPED and planned.skip is not None:
            out.skipped[planned.skip] = out.skipped.get(planned.skip, 0) + 1
        elif v is Verdict.CORRUPT:
            out.corrupt += 1
        elif v is Verdict.NOT_CHECKED:
            out.not_checked += 1
        else:
            out.checked += 1
    return out


def refused(database: str) -> DatabaseCounts:
    """A database that refuses connections (datallowconn = false, like template0): skipped whole."""
    return DatabaseCounts(database=database, refused="no_connections")
