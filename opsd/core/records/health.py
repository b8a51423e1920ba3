"""Health records: blocking trees, long sessions, connections, PgBouncer pools and replication, the sample that
holds them, and what an incident keeps of its worst moment. Built by actions/health, saved by the health store,
read back by ``opsd health``, metrics and the monthly report."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, TypeAdapter, computed_field
from pydantic.dataclasses import dataclass

IDLE_IN_XACT = ("idle in transaction", "idle in transaction (aborted)")
SAMPLE_VERSION = 1
MOMENT_VERSION = 1
_CFG = ConfigDict(extra="ignore", defer_build=True)  # built at first use: fast start-up


@dataclass(config=_CFG)
class LockNode:
    pid: int
    state: str
    user: str
    database: str
    application: str
    client: str
    xact_age: float | None
    waiting_for: str | None  # e.g. "ShareLock on transactionid (row in public.t1)"
    wait_seconds: float | None
    holds: list[str]
    query: str
    children: list[LockNode] = field(default_factory=list)

    @property
    def idle_in_transaction(self) -> bool:
        return self.state in IDLE_IN_XACT


@dataclass(config=_CFG)
class LockTree:
    root: LockNode
    depth: int
    waiters: int
    longest_wait: float
    modes: list[str]
    relations: list[str]

    @property
    def root_idle_in_transaction(self) -> bool:
        return self.root.idle_in_transaction

    def summary(self) -> str:
        flag = " (IDLE IN TRANSACTION)" if self.root_idle_in_transaction else ""
        return (f"pid {self.root.pid}{flag} blocks {self.waiters} session(s), depth {self.depth}, longest wait "
                f"{self.longest_wait:.1f}s on {', '.join(self.relations) or 'transaction ids'}")


@dataclass(frozen=True, config=_CFG)
class LongSession:
    pid: int
    state: str
    user: str
    database: str
    application: str
    xact_age: float | None
    state_age: float | None
    query: str


@dataclass(config=_CFG)
class LockReport:
    trees: list[LockTree]
    long_transactions: list[LongSession]
    idle_in_transaction: list[LongSession]
    deadlocks_total: int
    deadlocks_new: int | None  # since the previous sample (None: no previous sample)


@dataclass(frozen=True, config=_CFG)
class ConnectionReport:
    total: int
    usable: int  # max_connections - superuser_reserved_connections
    max_connections: int
    reserved: int
    by_state: dict[str, int]
    by_database: dict[str, int]
    by_user: dict[str, int]
    by_application: dict[str, int]

    @property
    def used_share(self) -> float:
        """Percent of the usable connections in use (exact: thresholds compare this)."""
        return 100.0 * self.total / self.usable if self.usable > 0 else 100.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def utilisation(self) -> float:
        return round(self.used_share, 1)


@dataclass(frozen=True, config=_CFG)
class Pool:
    database: str
    user: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    servers: int  # every server connection of the pool (active, idle, used, tested, login)
    maxwait: float  # seconds the oldest waiting client has waited
    pool_mode: str
    pool_size: int | None
    max_db_connections: int | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def saturation(self) -> float | None:
        """Server connections in use against the pool's size (percent)."""
        return round(100.0 * self.servers / self.pool_size, 1) if self.pool_size else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def saturated(self) -> bool:
        return self.cl_waiting > 0 and (self.pool_size is None or self.servers >= self.pool_size)


@dataclass(frozen=True, config=_CFG)
class PoolStats:
    database: str
    avg_query_us: int
    avg_wait_us: int
    avg_xact_us: int
    total_xact_count: int


@dataclass(frozen=True, config=_CFG)
class PoolReport:
    pools: list[Pool]
    stats: list[PoolStats] = field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def waiting(self) -> int:
        return sum(p.cl_waiting for p in self.pools)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def maxwait(self) -> float:
        return max((p.maxwait for p in self.pools), default=0.0)


@dataclass(frozen=True, config=_CFG)
class StandbyLag:
    """One standby as its primary sees it (pg_stat_replication): lags in bytes behind the primary's current WAL
    position, and in seconds as PostgreSQL measured them (None when it has nothing to measure: an idle primary)."""

    name: str  # application_name (Patroni: the member name)
    client: str
    state: str  # streaming | catchup | backup | startup | stopping
    sync_state: str  # async | potential | sync | quorum
    write_lag_bytes: int | None
    flush_lag_bytes: int | None
    replay_lag_bytes: int | None
    write_lag: float | None
    flush_lag: float | None
    replay_lag: float | None


@dataclass(frozen=True, config=_CFG)
class Slot:
    """A replication slot and the WAL it holds back (pg_wal cannot be recycled past its restart_lsn)."""

    name: str
    kind: str  # physical | logical
    active: bool
    retained_bytes: int | None  # None: the slot never reserved WAL
    wal_status: str | None  # reserved | extended | unreserved | lost

    def retaining_too_much(self, limit: int) -> bool:
        return not self.active and (self.retained_bytes or 0) > limit


@dataclass(frozen=True, config=_CFG)
class Receiver:
    """This standby's side: what it received and replayed, and from where WAL comes."""

    source: str  # streaming (a WAL receiver is connected) | archive (restore_command only) | stopped
    sender: str  # host:port of the upstream, "" without a receiver
    receive_lsn: str | None
    replay_lsn: str | None
    replay_lag_bytes: int | None
    replay_lag: float | None  # seconds behind: 0 when all received WAL is replayed
    last_replayed_at: datetime | None  # commit time of the last replayed transaction
    paused: bool


@dataclass(frozen=True, config=_CFG)
class ReplicationReport:
    role: str  # primary | standby
    standbys: list[StandbyLag] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    receiver: Receiver | None = None


@dataclass(config=_CFG)
class HealthSample:
    taken_at: datetime
    locks: LockReport | None = None
    connections: ConnectionReport | None = None
    pool: PoolReport | None = None
    replication: ReplicationReport | None = None
    problems: list[str] = field(default_factory=list)  # "locks: probe timed out ..." etc.

    def as_json(self) -> dict[str, Any]:
        return SAMPLE.dump_python(self, mode="json")  # type: ignore[no-any-return]


@dataclass(frozen=True, config=_CFG)
class IncidentMoment:
    """The worst moment an incident saw: its blocking tree, pool or connection report, and the rank that
    decides whether a later moment is worse (larger is worse)."""

    tree: LockTree | None = None
    pool: Pool | None = None
    connections: ConnectionReport | None = None
    slot: Slot | None = None
    rank: tuple[float, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return MOMENT.dump_python(self, mode="json")  # type: ignore[no-any-return]


SAMPLE: TypeAdapter[HealthSample] = TypeAdapter(HealthSample)
MOMENT: TypeAdapter[IncidentMoment] = TypeAdapter(IncidentMoment)


def load_sample(raw: dict[str, Any], version: int) -> HealthSample:
    return SAMPLE.validate_python(raw)  # version 0 had the same fields (plus the computed ones, ignored)


def load_moment(raw: dict[str, Any], version: int) -> IncidentMoment:
    if version < 1 and "_rank" in raw:  # version 0 kept the rank as "_rank"
        raw = {**raw, "rank": raw["_rank"]}
    return MOMENT.validate_python(raw)
