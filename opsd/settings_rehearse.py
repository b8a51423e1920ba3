"""``[rehearse]``: migration rehearsals on a restored copy (docs/rehearse.md): who the migration runs as (an
OS user that is not opsd's, a database role that is no superuser), how long it may run, how often its locks are
sampled, and the limits past which what it does is a hazard for production."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import ByteSize, Field, field_validator

from opsd.settings_types import PositiveDuration, _Section

# the tables migration tools keep their own bookkeeping in: their rows change with every run and revert, and
# TypeORM creates its table at the first run; the rollback's comparison leaves them out
BOOKKEEPING = ["migrations", "typeorm_metadata", "alembic_version", "flyway_schema_history", "schema_migrations",
               "knex_migrations", "knex_migrations_lock", "_prisma_migrations", "django_migrations",
               "databasechangelog", "databasechangeloglock"]


class RehearseSection(_Section):
    os_user: str | None = None  # required: the OS user the command runs as (never root, never opsd.run_as)
    role: str | None = None  # the database role it connects as (default: the database's owner); no superuser
    timeout: PositiveDuration = timedelta(hours=1)  # each of the migration and the rollback
    sample_interval: PositiveDuration = timedelta(milliseconds=100)
    lock_budget: PositiveDuration = timedelta(milliseconds=100)  # a lock blocking reads or writes longer: a hazard
    large_table: ByteSize = ByteSize(100 * 1024**2)
    long_statement: PositiveDuration = timedelta(seconds=1)
    bookkeeping: list[str] = Field(default_factory=lambda: list(BOOKKEEPING))
    isolate_network: bool = True  # run the command in a network namespace of its own (opsd as root)

    @field_validator("os_user", "role")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", v):
            raise ValueError(f"invalid name {v!r}")
        return v

    @field_validator("bookkeeping")
    @classmethod
    def _tables(cls, v: list[str]) -> list[str]:
        if bad := [x for x in v if not re.fullmatch(r"[A-Za-z0-9_]+", x)]:
            raise ValueError(f"invalid table name(s): {', '.join(map(repr, bad))}")
        return v
