"""A drill host's fleet drill: claim the cluster whose last passed drill is oldest (a transaction on its claim
key, attached to the host's lease), drill it from its repository with this host's credentials for that
repository, and record the result only while the claim is still this host's; then the result also goes to the
drilled cluster's repository, where its own opsd finds it. Every drill of the fleet is a copy made, quarantined
and torn down by the copies room, like any drill (it *is* the drill job, aimed at the claimed cluster)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from opsd.actions.drill.job import DrillCancelled, DrillFailed, DrillRequest, drill_job
from opsd.actions.fleet.presence import Presence, capacity
from opsd.actions.fleet.publish import repository_at
from opsd.actions.fleet.store import FleetStore, Held, host_name
from opsd.actions.jobs import JobOutcome
from opsd.context import Context
from opsd.core.fleet.pick import drills_of, pick
from opsd.core.records.base import Note
from opsd.core.records.drill import DrillResult
from opsd.core.records.fleet import Capacity, Claim, ClusterEntry, DrillSummary, FleetDrill
from opsd.core.records.runs import Outcome
from opsd.errors import BusyError, OpsdError
from opsd.log import get_logger


class ClaimLost(OpsdError):
    """The host lost its lease while it drilled: another host may drill the cluster; this result is not the
    fleet's (kept in this host's own history only)."""

    def __init__(self, cluster: str, result: DrillResult | None) -> None:
        super().__init__(f"the claim on {cluster} was lost mid-drill (this host's lease expired: it was cut off or "
                         "paused past [fleet] ttl): the drill was stopped and its result is not the fleet's",
                         hint="docs/fleet.md, 'When something fails'")
        self.details = result or Note(reason="claim lost")


def aimed(ctx: Context, e: ClusterEntry) -> Context:
    """The context aimed at the claimed cluster: its stanza, in this host's pgbackrest.conf for its repository."""
    s = ctx.settings
    section = s.pgbackrest.model_copy(update={"stanza": e.stanza, "config": s.fleet.repositories[e.repository.name]})
    return replace(ctx, settings=s.model_copy(update={"pgbackrest": section}))


def fleet_drill_job(ctx: Context, presence: Presence, cancel: threading.Event | None = None,
                    stop: Callable[[Context], None] | None = None) -> Callable[[], JobOutcome]:
    """The daemon's drill job on a fleet drill host. ``cancel`` is set when the daemon stops (the drill is torn
    down and the claim given back, no result recorded); ``stop`` (the daemon's DrillControl.abort: kills the
    drill's commands and stops its copy, ``cancel`` left clear) is called when the lease is lost."""
    def body() -> JobOutcome:
        s = ctx.settings
        lease = presence.lease()  # FleetUnavailable: no claim, no drill (the job fails loudly)
        store = FleetStore.of(s)
        try:
            # claims first: a result recorded meanwhile is then read with it (never a cluster unclaimed and
            # without its newest result, drilled again at once)
            claims = store.claims()
            entries, results = store.entries(), store.results()
            drills = {e.cluster: drills_of(e, results.get(e.cluster, ())) for e in entries}
            chosen = pick(entries, drills, claims, capacity=_capacity(presence), repositories=s.fleet.repositories,
                          now=ctx.now(), min_gap=s.fleet.min_gap, refused=elsewhere(ctx, entries))
            if chosen.cluster is None:
                why = chosen.why_none()
                return JobOutcome(Outcome.SKIPPED, f"nothing to drill: {why}", Note(reason=why))
            e = chosen.cluster
            held = store.claim(Claim(cluster=e.cluster, host=host_name(s), pid=os.getpid(), lease=lease,
                                     started_at=ctx.now()))
            if held is None:
                why = f"{e.cluster} was claimed by another drill host meanwhile"
                return JobOutcome(Outcome.SKIPPED, why, Note(reason=why))
            get_logger().info("fleet.claimed", cluster=e.cluster, revision=held.revision, lease=lease)
            return _drill_held(ctx, store, presence, control=(cancel, stop), e=e, held=held)
        finally:
            store.close()

    return body


def elsewhere(ctx: Context, entries: list[ClusterEntry]) -> dict[str, str]:
    """Clusters whose repository, as this host's pgbackrest.conf of that name describes it for their stanza, is
    not the one they publish (type, bucket, path): drilling them would restore another cluster's backups."""
    out = {}
    for e in entries:
        conf = ctx.settings.fleet.repositories.get(e.repository.name)
        if conf is None:
            continue
        here = repository_at(conf, e.stanza, e.repository.name)
        if (here.type, here.location) != (e.repository.type, e.repository.location):
            out[e.cluster] = (f"repository {e.repository.name!r} is {here.type} {here.location} on this host, the "
                              f"cluster publishes {e.repository.type} {e.repository.location} ([fleet] repositories)")
    return out


def _capacity(presence: Presence) -> Capacity:
    return capacity(presence.ctx)


def _drill_held(ctx: Context, store: FleetStore, presence: Presence, *,
                control: tuple[threading.Event | None, Callable[[Context], None] | None], e: ClusterEntry,
                held: Held) -> JobOutcome:
    """Drill the claimed cluster; record its verdict while the claim holds. A drill with no verdict (the daemon
    stopping, this host's drill lock held, a bug) gives the claim back without one; so does a record etcd
    refused, at the next beats if need be: a claim never outlives its drill."""
    dctx = aimed(ctx, e)
    cancel, stop = control
    started = ctx.now()
    presence.begin(e.cluster, lambda: stop(dctx) if stop is not None else None)
    out: JobOutcome | None = None
    failure: OpsdError | None = None
    result: DrillResult | None = None
    try:
        out = drill_job(dctx, DrillRequest(target="random", stanza=e.stanza, cancel=cancel))()
        result = out.details if isinstance(out.details, DrillResult) else None
    except (DrillFailed, DrillCancelled) as ex:
        failure, result = ex, ex.details if isinstance(ex.details, DrillResult) else None
    except OpsdError as ex:  # failed before it had a result (the repository unreachable, no backup...)
        failure = ex
    except BaseException:  # a bug or an interrupt: no verdict for the cluster
        presence.end(e.cluster)
        presence.give_back(held)
        raise
    lost = presence.end(e.cluster)
    if lost:
        raise ClaimLost(e.cluster, result)
    if isinstance(failure, DrillCancelled | BusyError):  # the daemon stopping, or this host busy: no verdict
        presence.give_back(held)
        raise failure
    summary = _summary(ctx, held, started, result, failure)
    try:
        recorded = store.record(held, summary)
    except OpsdError:
        presence.give_back(held)
        raise
    if not recorded:
        raise ClaimLost(e.cluster, result)
    get_logger().info("fleet.recorded", cluster=e.cluster, outcome=summary.outcome, revision=held.revision)
    _after_record(ctx, store, dctx, e=e, summary=summary, result=result)
    if failure is not None:
        raise failure
    assert out is not None
    return out


def _summary(ctx: Context, held: Held, started: datetime, result: DrillResult | None,
             failure: OpsdError | None) -> DrillSummary:
    return DrillSummary(host=held.claim.host, started_at=started, finished_at=ctx.now(),
                        outcome="ok" if failure is None else "failed",
                        summary=(result.summary() if result else str(failure))[:500],
                        rto_seconds=result.rto_seconds if result else None,
                        rpo_seconds=result.rpo_seconds if result else None, claim=held.revision)


def _after_record(ctx: Context, store: FleetStore, dctx: Context, *, e: ClusterEntry, summary: DrillSummary,
                  result: DrillResult | None) -> None:
    """Old results pruned; the result written to the cluster's repository (a failure there is loud, but the
    fleet already has the result)."""
    from opsd.actions.fleet.repo_results import publish

    try:
        store.prune(e.cluster, ctx.now() - ctx.settings.fleet.keep_results)
    except OpsdError as ex:
        get_logger().warning("fleet.prune_failed", cluster=e.cluster, error=str(ex))
    fd = FleetDrill(fleet=ctx.settings.fleet.name, cluster=e.cluster, stanza=e.stanza, drill=summary, result=result)
    try:
        where = publish(dctx.settings.pgbackrest.config, e.stanza, fd)
        get_logger().info("fleet.result_in_repository", cluster=e.cluster, path=where)
    except OpsdError as ex:
        get_logger().error("fleet.result_not_in_repository", cluster=e.cluster, error=str(ex))


