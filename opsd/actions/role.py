"""This node's role at the moment a job starts, and the gate that skips a job the role does not run."""

from __future__ import annotations

from opsd.actions.server import server_role
from opsd.adapters import patroni
from opsd.context import Context
from opsd.core.role import NodeRole, PatroniState, Role, decide, skip_reason, standby_for_moved_jobs
from opsd.errors import OpsdError


class RoleSkip(OpsdError):
    """The job does not run on this node (its role): recorded as ``skipped`` with the role, exit 0."""

    def __init__(self, message: str, node: NodeRole) -> None:
        super().__init__(message)
        self.node = node


def node_role(ctx: Context) -> NodeRole:
    s = ctx.settings
    if ctx.role is not None:
        return ctx.role
    if s.opsd.role == "drill":
        return NodeRole(Role.DRILL_HOST, "config", "[opsd] role = \"drill\"")
    state: PatroniState | None = None
    patroni_error = pg_error = None
    if s.patroni.url:
        try:
            state = patroni.node_state(s.patroni.url, s.patroni.timeout.total_seconds(), s.patroni.ca_file)
        except OpsdError as e:
            patroni_error = str(e)
    in_recovery: bool | None = None
    try:
        in_recovery = server_role(ctx).in_recovery
    except OpsdError as e:
        pg_error = str(e)
    return decide(patroni_url=s.patroni.url, patroni=state, patroni_error=patroni_error, in_recovery=in_recovery,
                  pg_error=pg_error)


def require(ctx: Context, job: str) -> NodeRole:
    """The node's role; raises RoleSkip when ``job`` does not run with it."""
    node = node_role(ctx)
    why = skip_reason(job, node, ctx.settings.opsd.jobs_on_standby) or _not_the_chosen_standby(ctx, job, node)
    if why is not None:
        raise RoleSkip(f"skipped: {why}", node)
    return node


def _not_the_chosen_standby(ctx: Context, job: str, node: NodeRole) -> str | None:
    """With Patroni, a job moved to the standbys runs on one of them (the first healthy replica by name). When
    Patroni cannot list its members, every standby runs it: more load, never a job left undone."""
    p = ctx.settings.patroni
    if node.role != Role.STANDBY or job not in ctx.settings.opsd.jobs_on_standby or not p.url or not node.name:
        return None
    members = patroni.cluster(p.url, p.timeout.total_seconds(), p.ca_file)
    chosen = standby_for_moved_jobs(members) if members else None
    if chosen is None or chosen == node.name:
        return None
    return f"{job} runs on standby {chosen} (the first healthy replica by name; [opsd] jobs_on_standby)"
