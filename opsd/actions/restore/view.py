"""The restore plan as plain data: what ``opsd restore`` shows before it acts, and what ``--json`` prints
(typed, so docs/schemas/restore.json documents it)."""

from __future__ import annotations

from typing_extensions import TypedDict  # pydantic reads these on Python 3.11

from opsd.actions.restore.plan import Plan
from opsd.core.timeparse import show
from opsd.core.units import format_duration


class TargetView(TypedDict):
    type: str
    value: str
    timeline: str  # a number, or "latest"


WalView = TypedDict("WalView", {"from": str | None, "to": str | None, "segments": int, "bytes": int})


class DestinationView(TypedDict):
    path: str
    port: int | None
    in_place: bool
    delta: bool
    real_path: str | None
    archive_mode: str  # "preserve" in place, "off" for a side copy


class TablespaceView(TypedDict):
    name: str
    oid: int
    source: str  # its location in production when the backup was taken
    destination: str  # where this restore puts it
    how: str  # mapped | moved aside | overwritten (--delta) | restored (location empty)
    size: int | None  # bytes, from the backup's manifest (null: unknown)


class VerdictView(TypedDict):
    level: str  # ok | warning | refuse
    message: str


class PlanView(TypedDict):
    target: TargetView
    backup: str | None
    backup_type: str | None
    backup_size: int | None
    why: str
    wal: WalView
    estimate_seconds: float | None
    estimate: str | None
    estimate_source: str
    destination: DestinationView
    recovery: str
    tablespaces: list[TablespaceView]
    verdicts: list[VerdictView]
    refused: bool


def describe(plan: Plan) -> PlanView:
    """The plan as plain data (JSON and console both render this)."""
    r = plan.request
    target = (show(r.target_time) if r.target_time else r.target_value) or "end of backup (consistent)"
    if r.exclusive:
        target = f"just before {target} (exclusive)"
    if r.stop_lsn:
        target += f" at LSN {r.stop_lsn}"
    return {
        "target": {"type": r.target_type, "value": target, "timeline": plan.timeline or "latest"},
        "backup": plan.backup.label if plan.backup else None,
        "backup_type": plan.backup.type if plan.backup else None,
        "backup_size": plan.backup.size if plan.backup else None,
        "why": plan.why,
        "wal": {"from": plan.wal_from, "to": plan.wal_to, "segments": plan.wal_segments,
                "bytes": plan.wal_bytes},
        "estimate_seconds": plan.estimate_seconds,
        "estimate": (format_duration(plan.estimate_seconds) if plan.estimate_seconds is not None else None),
        "estimate_source": plan.estimate_source,
        "destination": {"path": str(r.dest), "port": r.port, "in_place": r.in_place, "delta": r.delta,
                        "real_path": str(plan.real_path) if plan.real_path else None,
                        "archive_mode": "preserve" if r.in_place else "off"},
        "recovery": ("to the target" if plan.pin is None else f"pinned: {plan.pin.target_type}"
                     + (f" {plan.pin.target}" if plan.pin.target else "")),
        "tablespaces": [{"name": t.name, "oid": t.oid, "source": t.source, "destination": t.dest, "how": t.how,
                         "size": t.size}
                        for t in plan.tablespaces],
        "verdicts": [{"level": v.level, "message": v.message} for v in plan.verdicts],
        "refused": plan.refused,
    }
