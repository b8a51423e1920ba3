"""The fleet as ``opsd fleet status`` shows it: every cluster with its last drill, when it is due, whether it is
overdue, the claim in flight, and the drill hosts alive; read from etcd in one pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from opsd.core.fleet.pick import Drills
from opsd.core.records.fleet import Claim, ClusterEntry, DrillHostEntry


@dataclass(frozen=True)
class ClusterRow:
    entry: ClusterEntry
    drills: Drills
    due_at: datetime
    overdue_by: timedelta | None
    claim: Claim | None
    too_large: bool  # no drill host alive has the scratch space for it


@dataclass(frozen=True)
class FleetView:
    fleet: str
    read_at: datetime
    drill_every: timedelta
    clusters: tuple[ClusterRow, ...]
    hosts: tuple[DrillHostEntry, ...]

    @property
    def overdue(self) -> list[str]:
        return [r.entry.cluster for r in self.clusters if r.overdue_by is not None]

    @property
    def claims(self) -> list[Claim]:
        return [r.claim for r in self.clusters if r.claim is not None]
