"""This node's role at the moment a job starts, the gate that skips a job the role does not run, and the alerts an
undecided role or a split brain raise (``role.undecided``, ``role.split_brain``; docs/ha.md)."""

from __future__ import annotations

from datetime import datetime

from opsd.actions.server import server_role
from opsd.adapters import patroni
from opsd.adapters.stores import role_state
from opsd.context import Context
from opsd.core.role import DcsView, NodeRole, PatroniState, Role, decide, skip_reason, standby_for_moved_jobs
from opsd.errors import OpsdError
from opsd.log import get_logger

UNDECIDED = "role.undecided"
SPLIT_BRAIN = "role.split_brain"


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
    dcs: DcsView | None = None
    patroni_error = pg_error = None
    if s.patroni.url:
        deadline = patroni.Deadline(s.patroni.timeout.total_seconds())  # one deadline for every Patroni read
        try:
            state = patroni.node_state(s.patroni.url, deadline, s.patroni.ca_file)
            dcs = patroni.dcs_view(s.patroni.url, state.name, deadline, s.patroni.ca_file)
        except OpsdError as e:
            patroni_error = str(e)
    in_recovery: bool | None = None
    try:
        in_recovery = server_role(ctx).in_recovery
    except OpsdError as e:
        pg_error = str(e)
    return decide(patroni_url=patroni.where(s.patroni.url) if s.patroni.url else "", patroni=state,
                  patroni_error=patroni_error, in_recovery=in_recovery, pg_error=pg_error, dcs=dcs)


def require(ctx: Context, job: str) -> NodeRole:
    """The node's role; raises RoleSkip when ``job`` does not run with it."""
    node = node_role(ctx)
    why = skip_reason(job, node, ctx.settings.opsd.jobs_on_standby) or _not_the_chosen_standby(ctx, job, node)
    if why is not None:
        raise RoleSkip(f"skipped: {why}", node)
    return node


def undecided_for(ctx: Context, node: NodeRole | None = None) -> float | None:
    """Seconds the role has been undecided (at the last look), None when it was decided. With ``node`` (a look
    that raises no alert, as a metrics scrape): an undecided role not yet remembered is remembered from now."""
    mark = role_state.undecided_since(ctx.history.state_dir)
    if mark is None and node is not None and node.role == Role.UNKNOWN and node.source != "config":
        role_state.mark_undecided(ctx.history.state_dir, ctx.history.owner, ctx.now(), node.why)
        return 0.0
    return max((ctx.now() - mark[0]).total_seconds(), 0.0) if mark else None


def observe(ctx: Context, node: NodeRole, skipped_job: str | None = None) -> float | None:
    """Keep "undecided since"; raise ``role.undecided`` once it lasts ``[patroni] undecided_alert_after`` (at once
    when ``skipped_job`` is skipped because of it), ``role.split_brain`` while two members answer as primaries;
    resolve both when the role is decided. Returns the seconds undecided (None: decided)."""
    from opsd.actions import alerts

    if node.source == "config":
        return None
    now = ctx.now()
    if node.split_brain:
        alerts.fire(ctx, SPLIT_BRAIN, f"split brain: {node.why}; no repository writes on this node until it is "
                                      "decided", details={"sources": list(node.sources)})
    if node.role != Role.UNKNOWN:
        role_state.mark_decided(ctx.history.state_dir)
        alerts.resolve(ctx, UNDECIDED, f"role decided: {node.describe()}")
        if not node.split_brain:
            alerts.resolve(ctx, SPLIT_BRAIN, f"role decided: {node.describe()}")
        return None
    mark = role_state.undecided_since(ctx.history.state_dir)
    since: datetime = mark[0] if mark else now
    role_state.mark_undecided(ctx.history.state_dir, ctx.history.owner, since, node.why)
    seconds = max((now - since).total_seconds(), 0.0)
    if skipped_job or seconds >= ctx.settings.patroni.undecided_alert_after.total_seconds():
        what = f"; {skipped_job} skipped" if skipped_job else ""
        alerts.fire(ctx, UNDECIDED, f"role undecided for {int(seconds)}s ({node.why}){what}: nothing that writes to "
                                    "the repository runs here", details={"sources": list(node.sources)})
    return seconds


def observe_quietly(ctx: Context, node: NodeRole, skipped_job: str | None = None) -> None:
    """:func:`observe` for a job: its problems are logged, never the job's outcome."""
    try:
        observe(ctx, node, skipped_job)
    except Exception as e:  # the alert store or a channel broke: the job's result stands
        get_logger().error("alert.failed", alert=UNDECIDED, error=f"{type(e).__name__}: {e}")


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
