"""How long health samples are kept, and at which resolution (``[health] keep``), and which samples thinning keeps
(pure). ``keep = "all:14d, 15m:90d, 1h:400d"``: every sample for 14 days; then, up to 90 days old, per 15-minute
bucket only the samples that hold the worst value of some figure (longest lock wait, highest connection use,
longest PgBouncer wait, most clients waiting, longest replay lag, most probe problems), or the bucket's first
sample when nothing happened; then per hour the same way up to 400 days; older samples are deleted. Incidents
are kept whole: they are written from every sample as it is taken, never from the thinned ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opsd.core.schedule import parse_duration

if TYPE_CHECKING:
    from opsd.core.records.health import HealthSample

ALL = "all"
DEFAULT_KEEP = "all:14d, 15m:90d, 1h:400d"


@dataclass(frozen=True)
class Tier:
    """Samples younger than ``age`` (and older than the previous tier's) are kept one per ``step`` bucket and
    figure; ``step`` None: every sample."""

    step: timedelta | None
    age: timedelta


@dataclass(frozen=True)
class Keep:
    tiers: tuple[Tier, ...]

    @property
    def horizon(self) -> timedelta:
        """Samples older than this are deleted."""
        return self.tiers[-1].age

    def __str__(self) -> str:
        def dur(td: timedelta) -> str:
            s = int(td.total_seconds())
            for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
                if s % n == 0:
                    return f"{s // n}{unit}"
            return f"{s}s"

        return ", ".join(f"{ALL if t.step is None else dur(t.step)}:{dur(t.age)}" for t in self.tiers)


def parse_keep(text: str) -> Keep:
    """``"all:14d, 15m:90d, 1h:400d"``: tiers by growing age, each coarser than the one before."""
    tiers: list[Tier] = []
    for part in (p.strip() for p in text.split(",")):
        step_s, sep, age_s = part.partition(":")
        if not sep or not age_s.strip():
            raise ValueError(f"invalid tier {part!r}: use STEP:AGE, e.g. 'all:14d, 15m:90d, 1h:400d'")
        step = None if step_s.strip() == ALL else parse_duration(step_s.strip())
        age = parse_duration(age_s.strip())
        if (step is not None and step <= timedelta(0)) or age <= timedelta(0):
            raise ValueError(f"invalid tier {part!r}: step and age must be longer than zero")
        if step is not None and step > timedelta(days=1):
            raise ValueError(f"invalid tier {part!r}: a step of at most a day")
        if tiers:
            prev = tiers[-1]
            if age <= prev.age:
                raise ValueError(f"invalid tier {part!r}: ages must grow ({age} after {prev.age})")
            if step is None or (prev.step is not None and step <= prev.step):
                raise ValueError(f"invalid tier {part!r}: each tier coarser than the one before")
        tiers.append(Tier(step, age))
    if not tiers:
        raise ValueError("at least one tier, e.g. 'all:14d'")
    return Keep(tuple(tiers))


@dataclass(frozen=True)
class SampleFigures:
    """What thinning compares, per stored sample (columns beside the sample's JSON)."""

    id: int
    taken_at: datetime
    figures: tuple[float, ...]  # larger is worse; the same order for every sample


def bucket_of(at: datetime, step: timedelta) -> int:
    return int(at.timestamp() // step.total_seconds())


def to_delete(rows: Sequence[SampleFigures], step: timedelta) -> list[int]:
    """The ids thinning deletes among ``rows`` (whole buckets of ``step``): in each bucket it keeps, for each
    figure, the first sample with the bucket's worst value above zero, and the first sample of the bucket."""
    buckets: dict[int, list[SampleFigures]] = {}
    for r in sorted(rows, key=lambda r: (r.taken_at, r.id)):
        buckets.setdefault(bucket_of(r.taken_at, step), []).append(r)
    gone: list[int] = []
    for members in buckets.values():
        kept = {members[0].id}
        for i in range(len(members[0].figures)):
            worst = max(members, key=lambda r: r.figures[i])  # max keeps the first of equals
            if worst.figures[i] > 0:
                kept.add(worst.id)
        gone += [r.id for r in members if r.id not in kept]
    return gone


def figures(s: HealthSample) -> tuple[float | None, ...]:
    """The figures thinning compares, in the order of the store's columns (None: the part was not read)."""
    lock = max((t.longest_wait for t in s.locks.trees), default=0.0) if s.locks else None
    rep = s.replication
    lags = ([b.replay_lag for b in rep.standbys] + [rep.receiver.replay_lag if rep.receiver else None]) if rep else []
    lag = max((x for x in lags if x is not None), default=None)
    return (lock, s.connections.used_share if s.connections else None, s.pool.maxwait if s.pool else None,
            float(s.pool.waiting) if s.pool else None, lag, float(len(s.problems)))
