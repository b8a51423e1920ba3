"""Load SQL from ``opsd/db/sql/<name>.sql`` (one query a file, header comment first) and run it.

Values are always bound as parameters. Rows come back as frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import psycopg
from psycopg import Connection
from psycopg.rows import class_row

from opsd.core.pgtext import pg_error
from opsd.errors import DatabaseError, QueryTimeout

T = TypeVar("T")


@cache
def load(name: str) -> str:
    return (resources.files("opsd.db") / "sql" / f"{name}.sql").read_text()


def fetch_all(conn: Connection[Any], name: str, row: type[T], params: dict[str, Any] | None = None) -> list[T]:
    try:
        with conn.cursor(row_factory=class_row(row)) as cur:
            cur.execute(load(name), params or {})
            return cur.fetchall()
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as e:
        raise QueryTimeout(f"query {name} timed out: {pg_error(e)}") from None
    except psycopg.Error as e:
        raise DatabaseError(f"query {name} failed: {pg_error(e)}") from None


def execute(conn: Connection[Any], name: str, params: dict[str, Any]) -> int:
    """Run one statement that returns no rows; the number of rows it touched."""
    try:
        return conn.execute(load(name), params).rowcount
    except psycopg.Error as e:
        raise DatabaseError(f"query {name} failed: {pg_error(e)}") from None


def execute_script(conn: Connection[Any], name: str) -> None:
    """Run a multi-statement file (no parameters: the simple query protocol)."""
    try:
        conn.execute(load(name).encode())
    except psycopg.Error as e:
        raise DatabaseError(f"{name} failed: {pg_error(e)}") from None


def fetch_one(conn: Connection[Any], name: str, row: type[T], params: dict[str, Any] | None = None) -> T:
    rows = fetch_all(conn, name, row, params)
    if len(rows) != 1:
        raise LookupError(f"query {name} returned {len(rows)} rows, expected 1")
    return rows[0]


@dataclass(frozen=True)
class ServerRow:
    version_num: int
    in_recovery: bool
    system_identifier: int
    is_superuser: bool
    now: datetime


@dataclass(frozen=True)
class TimelineRow:
    in_recovery: bool
    checkpoint_timeline: int
    wal_timeline: int | None


@dataclass(frozen=True)
class SettingRow:
    name: str
    setting: str
    context: str
    pending_restart: bool
    file_value: str | None = None

    @property
    def configured(self) -> str:
        """What the config files say (pg_settings shows archive_command as '(disabled)' when archiving is off)."""
        return self.file_value if self.setting == "(disabled)" and self.file_value is not None else self.setting


@dataclass(frozen=True)
class ArchiverRow:
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    current_wal: str | None
    ready_count: int | None
    oldest_ready: datetime | None
    now: datetime


@dataclass(frozen=True)
class RecoveryRow:
    in_recovery: bool
    pause_state: str
    last_replayed_xact: datetime | None
    replay_lsn: str | None
    timeline: int


@dataclass(frozen=True)
class HeartbeatRow:
    id: int
    written_at: datetime
    txid: int
    lsn: str


@dataclass(frozen=True)
class NameRow:
    name: str


@dataclass(frozen=True)
class DatabaseRow:
    name: str
    allowed: bool  # datallowconn


@dataclass(frozen=True)
class PresentRow:
    present: bool


@dataclass(frozen=True)
class RelationRow:
    name: str  # oid::regclass::text: quoted as needed
    kind: str  # pg_class.relkind: r table, m materialized view, t TOAST, i index, S sequence, p, I, v, c, f
    schema: str
    pages: int
    persistence: str = "p"  # p permanent, u unlogged
    populated: bool = True  # false: a matview never refreshed (or an index / TOAST table of one)
    am: str = ""  # an index's access method
    valid: bool = True  # false: an index marked invalid (a failed CREATE INDEX CONCURRENTLY)


@dataclass(frozen=True)
class CorruptionRow:
    blkno: int | None
    offnum: int | None
    msg: str


@dataclass(frozen=True)
class CheckedRow:
    checked: bool


@dataclass(frozen=True)
class WaiterRow:
    pid: int
    blocked_by: list[int]


@dataclass(frozen=True)
class SessionRow:
    pid: int
    state: str
    usename: str
    datname: str
    application_name: str
    client: str
    wait_event_type: str
    wait_event: str
    xact_age: float | None
    state_age: float | None
    query: str


@dataclass(frozen=True)
class LockRow:
    pid: int
    locktype: str
    mode: str
    granted: bool
    relation: str | None
    wait_age: float | None


@dataclass(frozen=True)
class ConnectionRow:
    state: str
    datname: str
    usename: str
    application_name: str
    sessions: int
    max_connections: int
    reserved: int


@dataclass(frozen=True)
class LimitsRow:
    max_connections: int
    reserved: int


@dataclass(frozen=True)
class PrivilegesRow:
    """What opsd's role may do in production (privileges.sql); the postgres.privileges check judges it."""

    role: str
    database: str
    superuser: bool
    superuser_via: str | None  # a superuser role this one is a member of (it can SET ROLE to it)
    pg_monitor: bool
    pg_read_all_data: bool
    pg_write_all_data: bool
    pg_checkpoint: bool
    create_on_database: bool
    file_settings: bool  # EXECUTE on pg_show_all_file_settings() and SELECT on pg_file_settings
    reload_conf: bool
    restore_point: bool
    switch_wal: bool
    alter_system_archive: bool
    alter_system_recovery: bool
    heartbeat_table: bool
    heartbeat_write: bool  # USAGE on schema opsd, INSERT and DELETE on opsd.heartbeat
    heartbeat_owner: bool  # owns schema opsd and opsd.heartbeat where they exist
