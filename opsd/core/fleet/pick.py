"""Which cluster a drill host drills next, and which clusters are overdue.

The fleet's order: the cluster whose last passed drill is oldest (never passed: first, oldest registration
first). A drill host passes over a cluster claimed by another host, drilled less than ``min_gap`` ago, larger
than its scratch space, or in a repository it has no credentials for; each is named with its reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from opsd.core.records.fleet import Capacity, Claim, ClusterEntry, DrillHostEntry, DrillSummary
from opsd.core.units import format_duration, human_bytes


@dataclass(frozen=True)
class Drills:
    """What the fleet knows of one cluster's drills: the last, and the last that passed."""

    last: DrillSummary | None = None
    last_passed: DrillSummary | None = None


@dataclass(frozen=True)
class PassedOver:
    cluster: str
    reason: str


@dataclass(frozen=True)
class Pick:
    cluster: ClusterEntry | None
    passed_over: tuple[PassedOver, ...] = ()

    def why_none(self) -> str:
        if not self.passed_over:
            return "no cluster is registered in the fleet"
        return "; ".join(f"{p.cluster}: {p.reason}" for p in self.passed_over)


def drills_of(entry: ClusterEntry, results: Iterable[DrillSummary]) -> Drills:
    """The cluster's drills from the fleet's results and from its own entry (drills it ran itself count too)."""
    every = sorted([*results, *([entry.last_drill] if entry.last_drill else [])], key=lambda d: d.finished_at)
    passed = [d for d in every if d.passed]
    return Drills(every[-1] if every else None, passed[-1] if passed else None)


def due_at(entry: ClusterEntry, drills: Drills, every: timedelta) -> datetime:
    """When the cluster is overdue: ``every`` after its last passed drill, or after it joined the fleet."""
    since = drills.last_passed.finished_at if drills.last_passed else entry.registered_at
    return since + every


def overdue_by(entry: ClusterEntry, drills: Drills, every: timedelta, now: datetime) -> timedelta | None:
    late = now - due_at(entry, drills, every)
    return late if late > timedelta(0) else None


def order(clusters: Sequence[ClusterEntry], drills: Mapping[str, Drills]) -> list[ClusterEntry]:
    """Oldest last passed drill first; never passed first of all, the oldest registration first among them."""
    def key(e: ClusterEntry) -> tuple[int, datetime]:
        d = drills.get(e.cluster, Drills()).last_passed
        return (0, e.registered_at) if d is None else (1, d.finished_at)
    return sorted(clusters, key=key)


def pick(clusters: Sequence[ClusterEntry], drills: Mapping[str, Drills], claims: Mapping[str, Claim], *,
         capacity: Capacity, repositories: Iterable[str], now: datetime, min_gap: timedelta,
         refused: Mapping[str, str] | None = None) -> Pick:
    """``refused``: clusters this host must not drill, with the reason (its repository of that name is another)."""
    known = set(repositories)
    over: list[PassedOver] = []
    for e in order(clusters, drills):
        why = (refused or {}).get(e.cluster) if claims.get(e.cluster) is None else None
        why = why or _passed_over(e, drills.get(e.cluster, Drills()), claims.get(e.cluster), capacity, known,
                                  now=now, min_gap=min_gap)
        if why is None:
            return Pick(e, tuple(over))
        over.append(PassedOver(e.cluster, why))
    return Pick(None, tuple(over))


def _passed_over(e: ClusterEntry, d: Drills, claim: Claim | None, capacity: Capacity, known: set[str], *,
                 now: datetime, min_gap: timedelta) -> str | None:
    if claim is not None:
        return f"claimed by {claim.host} since {claim.started_at.isoformat(timespec='seconds')}"
    if e.repository.name not in known:
        return f"no credentials for repository {e.repository.name!r} on this host ([fleet] repositories)"
    if e.database_bytes is not None and e.database_bytes > capacity.scratch_bytes:
        return (f"too large for this host: {human_bytes(e.database_bytes)} against "
                f"{human_bytes(capacity.scratch_bytes)} of scratch space")
    if d.last is not None and now - d.last.finished_at < min_gap:
        return f"drilled {format_duration(now - d.last.finished_at)} ago ([fleet] min_gap)"
    return None


def too_large(clusters: Sequence[ClusterEntry], hosts: Sequence[DrillHostEntry]) -> list[str]:
    """Clusters no drill host of the fleet has the scratch space for (named, never starved silently); with no
    drill host alive, none is called too large (the fleet status says no drill host is alive)."""
    if not hosts:
        return []
    room = max(h.capacity.scratch_bytes for h in hosts)
    return [e.cluster for e in clusters if e.database_bytes is not None and e.database_bytes > room]
