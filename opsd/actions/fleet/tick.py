"""The daemon's fleet job, every ``[fleet] publish_every``: a cluster host publishes its cluster; a drill host
reads the whole fleet. Both keep ``fleet.json`` (status, metrics) and raise or resolve the fleet's alerts."""

from __future__ import annotations

from opsd.actions.fleet import state as fleet_state
from opsd.actions.fleet.presence import Presence
from opsd.actions.fleet.publish import cluster_tick
from opsd.actions.fleet.read import view_of
from opsd.actions.fleet.store import FleetStore, host_name
from opsd.context import Context
from opsd.core.records.fleet import FleetState
from opsd.errors import OpsdError


def tick(ctx: Context, presence: Presence | None) -> str:
    s = ctx.settings
    if not s.fleet.enabled:
        return "skipped"
    st = cluster_tick(ctx) if s.fleet.role_for(s.opsd.role) == "cluster" else drill_host_tick(ctx, presence)
    return "ok" if st.reachable else "failed"


def drill_host_tick(ctx: Context, presence: Presence | None) -> FleetState:
    last = fleet_state.blank(ctx, host_name(ctx.settings))
    if presence is not None and presence.error:
        return fleet_state.unreachable(ctx, last, presence.error)
    try:
        store = FleetStore.of(ctx.settings)
    except OpsdError as e:
        return fleet_state.unreachable(ctx, last, str(e))
    try:
        view = view_of(store, ctx.settings, ctx.now())
    except OpsdError as e:
        return fleet_state.unreachable(ctx, last, str(e))
    finally:
        store.close()
    st = FleetState(fleet=view.fleet, role="drill", host=host_name(ctx.settings), checked_at=ctx.now(), reachable=True,
                    clusters=len(view.clusters), drill_hosts=len(view.hosts), claims=len(view.claims),
                    overdue=view.overdue, too_large=[r.entry.cluster for r in view.clusters if r.too_large],
                    lease_losses=presence.losses + presence.base_losses if presence else last.lease_losses)
    fleet_state.reachable(ctx, st)
    return st

