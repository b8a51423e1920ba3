"""Which role this node plays, decided from what Patroni and PostgreSQL say, and which jobs each role runs.

Pure: the facts are gathered elsewhere (``actions/role.py``). One ``opsd.toml`` serves every node of an HA
pair; the role is found at each run, so the node that leads after a failover takes the next backup by itself.
A node whose role cannot be decided runs nothing that writes to the repository, and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"
    UNKNOWN = "unknown"
    DRILL_HOST = "drill host"


@dataclass(frozen=True)
class PatroniState:
    """What Patroni's REST API (``GET /patroni``) says of this node."""

    role: str  # primary (master before Patroni 3), replica, standby_leader, demoted, uninitialized...
    state: str  # running, starting, stopped, ...
    paused: bool  # maintenance mode: Patroni does not fail over
    timeline: int | None = None
    name: str = ""  # this member's name in the Patroni cluster


@dataclass(frozen=True)
class Member:
    """A member of the Patroni cluster as ``GET /cluster`` lists it."""

    name: str
    role: str  # leader, replica, sync_standby, standby_leader...
    state: str  # running, streaming, stopped, starting...


@dataclass(frozen=True)
class DcsView:
    """What the DCS says, through Patroni (``GET /cluster``): who holds the leader key, and what the other members
    answer for themselves (``GET /patroni`` of each, asked only to find a second primary)."""

    leader: str | None  # the member holding the leader key; None: nobody (or the DCS cannot be read)
    others_primary: tuple[str, ...] = ()  # other members whose Patroni says their PostgreSQL is a primary
    error: str | None = None  # why the DCS view could not be read

    def said(self) -> str:
        if self.error is not None:
            return f"DCS: {self.error}"
        return f"DCS: leader key held by {self.leader}" if self.leader else "DCS: nobody holds the leader key"


@dataclass(frozen=True)
class NodeRole:
    role: Role
    source: str  # patroni | postgres | config
    why: str
    paused: bool = False
    name: str = ""  # the Patroni member name, when Patroni decided
    sources: tuple[str, ...] = ()  # what each source said (Patroni, PostgreSQL, DCS), for status and alerts
    split_brain: str = ""  # another member answers as a primary too (maintenance mode): who

    def describe(self) -> str:
        return f"{self.role} ({self.why})"


PATRONI_LEADERS = frozenset({"primary", "master"})
PATRONI_FOLLOWERS = frozenset({"replica", "standby_leader", "standby-leader", "sync_standby"})
# jobs that write to the repository, or speak for the cluster: the primary's (or a drill host's)
PRIMARY_JOBS = frozenset({"backup-full", "backup-diff", "backup-incr", "heartbeat", "drill", "verify", "report"})
MOVABLE_JOBS = ("drill", "verify")  # an operator may move these to the standbys to spare the primary


def decide(*, patroni_url: str, patroni: PatroniState | None, patroni_error: str | None,
           in_recovery: bool | None, pg_error: str | None, dcs: DcsView | None = None) -> NodeRole:
    """With ``[patroni] url``: primary only when Patroni (leader, running), PostgreSQL (answers, not in recovery)
    and the DCS (this member holds the leader key) agree, and no other member answers as a primary; standby when
    Patroni says replica; anything else is unknown, naming what each source said. Without Patroni: PostgreSQL's."""
    if not patroni_url:
        return _postgres_only(in_recovery, pg_error)
    pg_said = _pg_said(in_recovery, pg_error)
    if patroni is None:
        return NodeRole(Role.UNKNOWN, "patroni", f"Patroni at {patroni_url} did not answer: {patroni_error}",
                        sources=(f"Patroni: {patroni_error}", pg_said))
    said = f"Patroni: {patroni.role}, {patroni.state}" + (", paused" if patroni.paused else "")
    view = dcs or DcsView(None, error="not asked")
    sources = (said, pg_said, view.said())
    brain = _split_brain(patroni, in_recovery, view)

    def node(role: Role, why: str) -> NodeRole:
        return NodeRole(role, "patroni", why, patroni.paused, patroni.name, sources, brain)

    if patroni.state != "running":
        return node(Role.UNKNOWN, said)
    if patroni.role in PATRONI_FOLLOWERS:  # a replica runs no writer job; with no leader key, nobody does: say so
        return node(Role.STANDBY, said) if view.leader else node(Role.UNKNOWN, f"{said}, but {view.said()}")
    if patroni.role not in PATRONI_LEADERS:
        return node(Role.UNKNOWN, said)
    if in_recovery is not False:  # promotion under way, PostgreSQL down: wait until both agree
        return node(Role.UNKNOWN, f"{said}, but {pg_said}")
    if view.leader is None or view.leader != patroni.name:
        return node(Role.UNKNOWN, f"{said}, but {view.said()}" + (f" (this member is {patroni.name})"
                                                                    if patroni.name else ""))
    if brain:
        return node(Role.UNKNOWN, f"{said}, but split brain: {brain}")
    return node(Role.PRIMARY, f"{said}; PostgreSQL not in recovery; {view.said()}")


def _pg_said(in_recovery: bool | None, pg_error: str | None) -> str:
    if in_recovery is None:
        return f"PostgreSQL did not answer: {pg_error}"
    return "PostgreSQL: in recovery" if in_recovery else "PostgreSQL: not in recovery"


def _postgres_only(in_recovery: bool | None, pg_error: str | None) -> NodeRole:
    if in_recovery is None:
        return NodeRole(Role.UNKNOWN, "postgres", f"PostgreSQL did not answer: {pg_error}")
    if in_recovery:
        return NodeRole(Role.STANDBY, "postgres", "pg_is_in_recovery() is true")
    return NodeRole(Role.PRIMARY, "postgres", "pg_is_in_recovery() is false")


def _split_brain(patroni: PatroniState, in_recovery: bool | None, view: DcsView) -> str:
    """Two members answer as primaries: this one (Patroni says leader and PostgreSQL is not in recovery) and
    another. Possible in maintenance mode (a replica promoted by hand), where Patroni demotes nobody."""
    if not view.others_primary or patroni.role not in PATRONI_LEADERS or in_recovery is not False:
        return ""
    return (f"{', '.join(view.others_primary)} also answer(s) as primary"
            + (" (the cluster is paused)" if patroni.paused else ""))


def stop_running_backup(seen: Sequence[NodeRole]) -> NodeRole | None:
    """While a backup runs, the role asked again every ``[patroni] check_every`` (oldest first): the answer that
    stops it, or None. A standby or a split brain stops it at once; an undecided role twice in a row (a node cut
    off from the DCS loses its leader key within Patroni's TTL: it must not write to the repository meanwhile; a
    single slow answer is not yet a reason to throw a long backup away)."""
    if not seen:
        return None
    last = seen[-1]
    if last.role == Role.STANDBY or last.split_brain:
        return last
    if len(seen) >= 2 and last.role == Role.UNKNOWN and seen[-2].role == Role.UNKNOWN:
        return last
    return None


def skip_reason(job: str, node: NodeRole, on_standby: Sequence[str]) -> str | None:
    """Why ``job`` does not run on this node, or None when it does. ``check`` and health sampling run on every
    node (each answers about itself)."""
    if node.role == Role.DRILL_HOST or job not in PRIMARY_JOBS:
        return None
    if node.role == Role.UNKNOWN:
        return f"role unknown ({node.why}): nothing that writes to the repository runs until it is decided"
    if node.role == Role.PRIMARY:
        return f"{job} runs on the standbys ([opsd] jobs_on_standby)" if job in on_standby else None
    if job in on_standby:
        return None
    return f"this node is a standby ({node.why}): {job} runs on the primary"


def standby_for_moved_jobs(members: Sequence[Member]) -> str | None:
    """Which standby runs the jobs moved off the primary (``jobs_on_standby``): the first healthy replica by name,
    so that one standby of several runs them, and the same one while nothing changes."""
    healthy = sorted(m.name for m in members if m.role in PATRONI_FOLLOWERS | {"replica"}
                     and m.state in ("running", "streaming"))
    return healthy[0] if healthy else None


JOBS = ("backup-full", "backup-diff", "backup-incr", "check", "verify", "drill", "report")
BACKUP_JOBS = {"backup-full": "full", "backup-diff": "diff", "backup-incr": "incr"}
DRILL_HOST_JOBS = ("check", "verify", "drill", "report")  # a drill host has no primary: no backups, no heartbeats


def role_jobs(role: str) -> tuple[str, ...]:
    return DRILL_HOST_JOBS if role == "drill" else JOBS
