"""A cluster host's part in the fleet, every ``[fleet] publish_every``: drills that ran elsewhere imported from
the repository, then the cluster's entry published (stanza, repository without secrets, size, newest backup,
last drill) and its own overdue state read back. Never on the backup path: a failure here is logged, alerted
and kept in ``fleet.json``; backups go on as before."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from opsd.actions.fleet import state as fleet_state
from opsd.actions.fleet.store import FleetStore, host_name
from opsd.actions.role import node_role
from opsd.adapters.pgbackrest_conf import option
from opsd.context import Context
from opsd.core.fleet.pick import drills_of, overdue_by
from opsd.core.records.drill import DrillResult
from opsd.core.records.fleet import ClusterEntry, DrillSummary, FleetState, Repository
from opsd.core.records.jobs import BackupResult
from opsd.core.records.runs import Run
from opsd.core.role import Role
from opsd.errors import OpsdError
from opsd.log import get_logger

BACKUPS = ("backup-full", "backup-diff", "backup-incr")


def repository_at(conf: Path, stanza: str, name: str) -> Repository:
    """A repository as a pgbackrest.conf describes it for ``stanza``: its type and location, never a key."""
    kind = option(conf, stanza, "repo1-type") or "posix"
    path = option(conf, stanza, "repo1-path") or "/var/lib/pgbackrest"
    bucket = option(conf, stanza, "repo1-s3-bucket") if kind == "s3" else None
    return Repository(name=name, type=kind, location=f"{bucket}:{path}" if bucket else path)


def repository(ctx: Context) -> Repository:
    """This cluster's repository as drill hosts know it (``[fleet] repository``)."""
    s = ctx.settings
    return repository_at(s.pgbackrest.config, s.pgbackrest.stanza, s.fleet.repository)


class NameTaken(OpsdError):
    """Another cluster (another stanza or repository) is published under this cluster's name."""


def summary_of(run: Run) -> DrillSummary | None:
    if run.finished_at is None:
        return None
    d = run.details_as(DrillResult)
    return DrillSummary(host=run.host, started_at=run.started_at, finished_at=run.finished_at,
                        outcome=str(run.outcome), summary=(d.summary() if d else run.error or "")[:500],
                        run_id=run.id, rto_seconds=d.rto_seconds if d else None,
                        rpo_seconds=d.rpo_seconds if d else None)


def entry_of(ctx: Context, registered_at: datetime) -> ClusterEntry:
    s = ctx.settings
    newest: Run | None = None
    for run in ctx.history.latest(BACKUPS, ("ok",)).values():
        ok = run[1]
        if ok is not None and (newest is None or ok.started_at > newest.started_at):
            newest = ok
    backup = newest.details_as(BackupResult) if newest else None
    last = ctx.history.last("drill", ("ok", "failed", "interrupted"))
    return ClusterEntry(
        cluster=s.fleet.cluster or s.pgbackrest.stanza, stanza=s.pgbackrest.stanza, repository=repository(ctx),
        host=host_name(s), database_bytes=backup.size if backup else None,
        newest_backup=backup.label if backup else None,
        newest_backup_at=newest.finished_at if newest and backup else None,
        last_drill=summary_of(last) if last else None, registered_at=registered_at, updated_at=ctx.now())


def _import(ctx: Context) -> None:
    from opsd.actions.fleet.repo_results import import_results

    try:
        import_results(ctx)
    except OpsdError as e:  # the entry is still published; the drills elsewhere show up at the next tick
        get_logger().error("fleet.import_failed", error=str(e))


def _leads(ctx: Context) -> bool:
    node = node_role(ctx)
    if node.role != Role.PRIMARY:
        get_logger().debug("fleet.not_publishing", role=str(node.role), source=node.source)
    return node.role == Role.PRIMARY


def cluster_tick(ctx: Context) -> FleetState:
    s = ctx.settings
    host = host_name(s)
    _import(ctx)
    last = fleet_state.blank(ctx, host)
    try:
        store = FleetStore.of(s)
    except OpsdError as e:
        return fleet_state.unreachable(ctx, last, str(e))
    try:
        name = s.fleet.cluster or s.pgbackrest.stanza
        old = store.entry(name)
        entry = entry_of(ctx, old.registered_at if old else ctx.now())
        if old is not None and (old.stanza, old.repository) != (entry.stanza, entry.repository):
            raise NameTaken(f"fleet {s.fleet.name}: the name {name!r} is published for stanza {old.stanza} in "
                            f"{old.repository.type} {old.repository.location} (by {old.host}), not this cluster's "
                            f"{entry.stanza} in {entry.repository.type} {entry.repository.location}: nothing "
                            "published", hint="give this cluster a name of its own ([fleet] cluster), or remove "
                            f"the old entry if the cluster moved (etcdctl del {store.keys.cluster(name)})")
        if _leads(ctx):  # one writer per cluster: a standby of an HA pair reads, the primary publishes
            store.put_entry(entry)
        elif old is not None:
            entry = old
        drills = drills_of(entry, store.results(name).get(name, ()))
        late = overdue_by(entry, drills, s.fleet.drill_every, ctx.now())
        state = FleetState(fleet=s.fleet.name, role="cluster", host=host, checked_at=ctx.now(), reachable=True,
                           clusters=len(store.entries()), drill_hosts=len(store.hosts()), claims=len(store.claims()),
                           overdue=[name] if late else [], this_cluster_overdue=late is not None)
    except NameTaken as e:
        return fleet_state.conflict(ctx, last, str(e))
    except OpsdError as e:
        return fleet_state.unreachable(ctx, last, str(e))
    finally:
        store.close()
    fleet_state.reachable(ctx, state)
    get_logger().info("fleet.published", cluster=name, overdue=state.this_cluster_overdue)
    return state
