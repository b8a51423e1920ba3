"""``[queries]``: service levels measured (docs/queries.md): pg_stat_statements and the table and index statistics
snapshotted as deltas, the query objectives counted exactly against PostgreSQL's duration log, unused and missing
indexes, availability. The schedule of the snapshots is ``[schedule] queries``."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from opsd.settings_types import PositiveDuration, _Section

_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"


def _name(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(_NAME, v):
        raise ValueError(f"invalid name {v!r}")
    return v


class Objective(_Section):
    """A share of statements that must complete under a threshold, optionally only some databases or roles'.
    No selector by application_name: pg_stat_statements does not keep it, so the calls that are the
    denominator cannot be counted for one application (docs/queries.md, "Why no application_name")."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    threshold: PositiveDuration
    target: float = Field(gt=0, lt=1)  # 0.95: 95% of statements under the threshold
    database: str | None = None
    role: str | None = None

    _ident = field_validator("database", "role")(_name)


def _default_objectives() -> list[Objective]:
    return [Objective(name="all", threshold=timedelta(milliseconds=100), target=0.95),
            Objective(name="reporting", threshold=timedelta(seconds=5), target=0.95, role="reporting")]


class QueriesSection(_Section):
    enabled: bool = True  # snapshots on a schedule ([schedule] queries); off: no snapshot, no check, no section
    objectives: list[Objective] = Field(default_factory=_default_objectives)
    # where PostgreSQL writes its csvlog/jsonlog (None: asked from the server, data_directory/log_directory)
    log_directory: Path | None = None
    log_format: Literal["auto", "jsonlog", "csvlog"] = "auto"
    snapshot_timeout: PositiveDuration = timedelta(seconds=5)  # statement_timeout of a snapshot's statement
    snapshot_lock_timeout: PositiveDuration = timedelta(seconds=1)
    keep: PositiveDuration = timedelta(days=400)  # snapshots older are pruned
    unused_min_span: PositiveDuration = timedelta(days=7)  # no "unused" verdict on statistics covering less
    unused_window: PositiveDuration = timedelta(days=30)
    # standbys whose index reads count too, as libpq conninfo without a password (a .pgpass or peer auth);
    # under Patroni ([patroni] url) its members are read and this may stay empty
    standbys: list[str] = Field(default_factory=list)
    seq_scan_rows: int = Field(10_000, ge=1)  # a table read by scans of more rows than this on average: a candidate
    # the login role the missing-index advice connects as to EXPLAIN application statements (then SET ROLE to each
    # statement's role); never a superuser or a member of one or of pg_*_server_* (refused). None: no EXPLAIN,
    # every candidate a guess (docs/queries.md, "How advice is proven"). Password: .pgpass of run_as, or peer/map.
    advice_user: str | None = None
    availability_target: float = Field(0.999, gt=0, lt=1)

    _advice_ident = field_validator("advice_user")(_name)

    @field_validator("log_directory")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_absolute():
            raise ValueError("must be an absolute path")
        return v

    @field_validator("standbys")
    @classmethod
    def _no_password(cls, v: list[str]) -> list[str]:
        if any(re.search(r"(^|\s)password\s*=|://[^/@]*:[^/@]*@", c) for c in v):
            raise ValueError("a standby's conninfo carries no password: use a .pgpass file of opsd's run_as user")
        return v

    @model_validator(mode="after")
    def _unique(self) -> QueriesSection:
        names = [o.name for o in self.objectives]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"objective names must be unique: {', '.join(dup)}")
        return self

    def lowest_threshold(self) -> timedelta | None:
        return min((o.threshold for o in self.objectives), default=None)
