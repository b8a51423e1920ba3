"""What this host last knew of its fleet, kept in ``<state_dir>/fleet.json`` for ``status``, metrics and alerts
(read without asking etcd at every scrape), and the fleet's alerts raised and resolved from it."""

from __future__ import annotations

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


def reachable(ctx: Context, state: FleetState) -> None:
    """Saved, the unreachable alert resolved, and one alert per overdue cluster raised or resolved."""
    save_state(ctx, state)
    alerts.resolve(ctx, UNREACHABLE, f"fleet {state.fleet}: etcd answers again")
    before = set(_overdue_alerts(ctx))
    for cluster in state.overdue:
        alerts.fire(ctx, f"fleet.overdue.{cluster}", f"fleet {state.fleet}: cluster {cluster} has not passed a "
                    f"drill within [fleet] drill_every ({ctx.settings.fleet.drill_every})", severity="warning")
    for key in before - {f"fleet.overdue.{c}" for c in state.overdue}:
        alerts.resolve(ctx, key)
    for cluster in state.too_large:
        alerts.fire(ctx, f"fleet.too_large.{cluster}", f"fleet {state.fleet}: no drill host has the scratch space "
                    f"for cluster {cluster}", severity="warning")


def _overdue_alerts(ctx: Context) -> list[str]:
    return [k for k in alerts.firing(ctx) if k.startswith("fleet.overdue.")]


def blank(ctx: Context, host: str) -> FleetState:
    """The state before the first answer: the last saved one, or an empty one."""
    s = ctx.settings
    return load_state(s) or FleetState(fleet=s.fleet.name, role=s.fleet.role_for(s.opsd.role), host=host,
                                       checked_at=ctx.now(), reachable=False)
