"""Reads for the query objectives (docs/queries.md, "Exactness"): the per-database and per-role setting
overrides, and the names of the databases and roles the selectors may name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from opsd.core.queries.counting import Override, overrides_of
from opsd.db.queries import fetch_all


@dataclass(frozen=True)
class OverrideRow:
    datname: str | None
    rolname: str | None
    setconfig: list[str] | None


@dataclass(frozen=True)
class NameRow:
    kind: str
    name: str


def overrides(conn: psycopg.Connection[Any]) -> list[Override]:
    out: list[Override] = []
    for r in fetch_all(conn, "qo_overrides", OverrideRow):
        out += overrides_of(r.datname, r.rolname, r.setconfig or [])
    return out


def names(conn: psycopg.Connection[Any]) -> tuple[set[str], set[str]]:
    """(databases, roles)."""
    rows = fetch_all(conn, "qo_names", NameRow)
    return {r.name for r in rows if r.kind == "database"}, {r.name for r in rows if r.kind == "role"}
