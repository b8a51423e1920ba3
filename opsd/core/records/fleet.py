"""What the hosts of a fleet write to etcd (docs/fleet.md, "Keys"): a cluster's entry, a drill host's entry, a
claim, and one drill's result. Each is JSON of a typed part, read back by every host and by ``opsd fleet``."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from opsd.core.records.base import Part, Record
from opsd.core.records.drill import DrillResult


class Repository(Part):
    """The repository a cluster backs up to, without a secret: a drill host finds its credentials under ``name``
    in its own ``[fleet] repositories``."""

    name: str
    type: str = "s3"  # pgBackRest's repo1-type
    location: str = ""  # bucket and path (s3), or path (posix): never a key or a password


class DrillSummary(Part):
    """One drill of a cluster, wherever it ran: enough for the fleet view and for the cluster's own history."""

    host: str
    started_at: datetime
    finished_at: datetime
    outcome: str  # ok | failed | interrupted (as the drill host's run history says)
    summary: str = ""
    run_id: int | None = None  # the run on the drill host
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    claim: int | None = None  # the claim's create revision in etcd (None: a drill the cluster ran itself)

    @property
    def passed(self) -> bool:
        return self.outcome == "ok"


class ClusterEntry(Part):
    """``clusters/<cluster>``: kept current by the cluster's own opsd (``fleet.publish``)."""

    cluster: str
    stanza: str
    repository: Repository
    host: str  # the host that published it
    database_bytes: int | None = None
    newest_backup: str | None = None
    newest_backup_at: datetime | None = None
    last_drill: DrillSummary | None = None  # as the cluster's own history knows it (its own drills too)
    registered_at: datetime
    updated_at: datetime


class Capacity(Part):
    scratch_bytes: int
    cores: int
    drills: int = 1  # at once


class DrillHostEntry(Part):
    """``hosts/<host>``: a drill host, attached to its lease (gone when the host is)."""

    host: str
    capacity: Capacity
    drilling: list[str] = Field(default_factory=list)
    updated_at: datetime


class Claim(Part):
    """``claims/<cluster>``: one drill host drills the cluster; attached to the host's lease."""

    cluster: str
    host: str
    pid: int
    lease: int
    started_at: datetime


class FleetDrill(Record):
    """A fleet drill's result as written to the drilled cluster's repository (``opsd/drills/<stanza>/``)."""

    KIND: ClassVar[str] = "fleet-drill"
    VERSION: ClassVar[int] = 1

    fleet: str
    cluster: str
    stanza: str
    drill: DrillSummary
    result: DrillResult | None = None  # the whole drill (checks, phases), shown by the cluster's own opsd


class FleetState(Part):
    """What this host last knew of its fleet (``<state_dir>/fleet.json``, written by the daemon's fleet jobs), for
    ``status``, metrics and alerts without asking etcd at every scrape."""

    fleet: str
    role: str  # cluster | drill
    host: str
    checked_at: datetime
    reachable: bool
    error: str | None = None  # why etcd could not be read or written (then the figures below are the last known)
    clusters: int = 0
    drill_hosts: int = 0
    claims: int = 0
    overdue: list[str] = Field(default_factory=list)  # clusters past drill_every since their last passed drill
    too_large: list[str] = Field(default_factory=list)  # clusters no drill host has the scratch space for
    lease_losses: int = 0  # this host's drills whose claim was lost mid-drill, since the state file was made
    this_cluster_overdue: bool | None = None  # a cluster host: its own cluster (None: a drill host, or unknown)
