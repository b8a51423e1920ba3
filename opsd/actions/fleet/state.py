"""What this host last knew of its fleet, kept in ``<state_dir>/fleet.json`` for ``status``, metrics and alerts
(read without asking etcd at every scrape), and the fleet's alerts raised and resolved from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from opsd.actions import alerts
from opsd.adapters.files import write_whole
from opsd.context import Context
from opsd.core.records.fleet import FleetState
from opsd.errors import OpsdError
from opsd.log import get_logger
from opsd.settings import Settings

UNREACHABLE = "fleet.unreachable"
CONFLICT = "fleet.name_taken"


def path(s: Settings) -> Path:
    return s.opsd.state_dir / "fleet.json"


def load_state(s: Settings) -> FleetState | None:
    """None when this host has no fleet, or has not checked it yet (or the file is unreadable: logged)."""
    if not s.fleet.enabled:
        return None
    try:
        return FleetState.model_validate_json(path(s).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as e:
        get_logger().warning("fleet.state_unreadable", path=str(path(s)), error=str(e).splitlines()[0])
        return None


def save_state(ctx: Context, state: FleetState) -> None:
    try:
        write_whole(path(ctx.settings), state.model_dump_json(indent=1), mode=0o644)
    except OpsdError as e:
        get_logger().error("fleet.state_not_saved", error=str(e))


def unreachable(ctx: Context, state: FleetState, error: str) -> FleetState:
    """etcd could not be read or written: the last figures kept, marked unreachable, the alert raised."""
    down = state.model_copy(update={"reachable": False, "error": error, "checked_at": ctx.now()})
    save_state(ctx, down)
    alerts.fire(ctx, UNREACHABLE, f"fleet {ctx.settings.fleet.name}: etcd unreachable: {error}",
                severity="critical" if ctx.settings.fleet.role_for(ctx.settings.opsd.role) == "drill" else "warning")
    return down


def conflict(ctx: Context, state: FleetState, error: str) -> FleetState:
    """This cluster could not be published (its name taken by another): etcd answered, the error is kept and
    alerted until the name is fixed."""
    kept = state.model_copy(update={"reachable": True, "error": error, "checked_at": ctx.now()})
    save_state(ctx, kept)
    alerts.fire(ctx, CONFLICT, error)
    return kept


def reachable(ctx: Context, state: FleetState) -> None:
    """Saved, the unreachable alert resolved, and one alert per overdue cluster raised or resolved."""
    save_state(ctx, state)
    alerts.resolve(ctx, UNREACHABLE, f"fleet {state.fleet}: etcd answers again")
    alerts.resolve(ctx, CONFLICT, f"fleet {state.fleet}: this cluster is published")
    firing = alerts.firing(ctx)
    _per_cluster(ctx, firing, "fleet.overdue.", state.overdue, lambda c: (
        f"fleet {state.fleet}: cluster {c} has not passed a drill within [fleet] drill_every "
        f"({ctx.settings.fleet.drill_every})"))
    _per_cluster(ctx, firing, "fleet.too_large.", state.too_large, lambda c: (
        f"fleet {state.fleet}: no drill host has the scratch space for cluster {c}"))


def _per_cluster(ctx: Context, firing: list[str], prefix: str, clusters: list[str],
                 text: Callable[[str], str]) -> None:
    """One alert per cluster named in ``clusters`` raised; those no longer named resolved."""
    for cluster in clusters:
        alerts.fire(ctx, f"{prefix}{cluster}", text(cluster), severity="warning")
    for key in {k for k in firing if k.startswith(prefix)} - {f"{prefix}{c}" for c in clusters}:
        alerts.resolve(ctx, key)


def blank(ctx: Context, host: str) -> FleetState:
    """The state before the first answer: the last saved one, or an empty one."""
    s = ctx.settings
    return load_state(s) or FleetState(fleet=s.fleet.name, role=s.fleet.role_for(s.opsd.role), host=host,
                                       checked_at=ctx.now(), reachable=False)
