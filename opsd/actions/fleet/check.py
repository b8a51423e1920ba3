"""``opsd check``'s fleet check: etcd answers (and how many of its members), this host's cluster is published and
proven in time, and which clusters of the fleet are overdue or too large for every drill host. etcd unreachable
is critical on a drill host (no drill starts without a claim), a warning on a cluster host (its backups do not
depend on the fleet)."""

from __future__ import annotations

from pydantic import JsonValue

from opsd.actions.fleet.read import view_of
from opsd.actions.fleet.store import FleetStore
from opsd.actions.fleet.view import FleetView
from opsd.adapters.etcd import MemberHealth
from opsd.context import Context
from opsd.core.records.checks import CRITICAL, OK, WARNING, CheckResult
from opsd.errors import OpsdError

FLEET = "fleet"


def check_fleet(ctx: Context, _state: object = None) -> CheckResult:
    s = ctx.settings
    drill = s.fleet.role_for(s.opsd.role) == "drill"
    unreachable = CRITICAL if drill else WARNING
    consequence = "no drill starts without a claim" if drill else "backups are not affected"
    try:
        store = FleetStore.of(s)
    except OpsdError as e:
        return CheckResult(FLEET, unreachable, f"fleet {s.fleet.name}: {e}; {consequence}")
    try:
        members = store.etcd.members()
        view = view_of(store, s, ctx.now())
    except OpsdError as e:
        return CheckResult(FLEET, unreachable, f"fleet {s.fleet.name}: {e}; {consequence}")
    finally:
        store.close()
    return judge(view, members, None if drill else (s.fleet.cluster or s.pgbackrest.stanza))


def judge(view: FleetView, members: list[MemberHealth], cluster: str | None) -> CheckResult:
    """Warning for anything the fleet should fix: an etcd member down, this cluster unpublished or overdue,
    clusters overdue or too large for every drill host."""
    down = [m.endpoint for m in members if m.error]
    problems = [f"etcd member(s) not answering: {', '.join(down)}"] if down else []
    names = [r.entry.cluster for r in view.clusters]
    if cluster is not None and cluster not in names:
        problems.append(f"this cluster ({cluster}) is not published yet (the daemon's fleet job does it)")
    if view.overdue:
        problems.append(f"overdue (no passed drill within {view.drill_every}): {', '.join(view.overdue)}")
    if big := [r.entry.cluster for r in view.clusters if r.too_large]:
        problems.append(f"too large for every drill host: {', '.join(big)}")
    head = (f"fleet {view.fleet}: {len(names)} cluster(s), {len(view.hosts)} drill host(s) alive, "
            f"{len(view.claims)} drill(s) in flight; etcd {len(members) - len(down)}/{len(members)} members answer")
    details: dict[str, JsonValue] = {"overdue": list(view.overdue), "too_large": list(big),
                                     "members_down": list(down)}
    if problems:
        return CheckResult(FLEET, WARNING, f"{head}; " + "; ".join(problems), details)
    return CheckResult(FLEET, OK, head, details)
