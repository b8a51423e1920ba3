"""Where a backup's tablespaces go, decided before anything is touched.

A side copy (drill, ``--target-dir``, ``restore --table``, ``--catalog-from-copy``) restores every tablespace
under ``<dest>.tablespaces/<name>`` (pgBackRest refuses a tablespace inside PGDATA): production's tablespace
directories are never a destination. An in-place restore writes each tablespace back to its location; the
location's version directory (``PG_15_<catalog version>``, what PostgreSQL and pgBackRest write) is moved aside
like the data directory, or overwritten only with ``--delta --force``.

Pure: the facts (what exists where) are gathered by :func:`gather` through the adapters."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from opsd.actions.restore.plan import (
    ALL_PASSED,
    OK,
    REFUSE,
    SPACE_MARGIN,
    WARN,
    DestFacts,
    Placement,
    Plan,
    Request,
    Verdict,
    passed,
    space_verdicts,
)
from opsd.adapters import files
from opsd.adapters.pgbackrest_restore import Tablespace, tablespace_bytes
from opsd.context import Context
from opsd.core.units import human_bytes
from opsd.errors import OpsdError
from opsd.log import get_logger

VERSION_DIR = re.compile(r"PG_\d+_\d+")


@dataclass(frozen=True)
class TablespaceFacts:
    """``root``: a side copy's tablespace directory (exists, empty); ``occupied``: in place, per location, the
    version directories that hold files; ``current``: production's tablespace locations (pg_tblspc)."""

    root_exists: bool = False
    root_empty: bool = True
    occupied: tuple[tuple[str, tuple[str, ...]], ...] = ()
    current: tuple[str, ...] = ()
    free: tuple[tuple[str, int | None], ...] = ()  # in place: free bytes where each location is
    sizes: tuple[tuple[int, int], ...] | None = ()  # bytes per tablespace OID (the manifest); None: unknown


def side_root(dest: Path) -> Path:
    """A side copy's tablespaces: beside its data directory, never inside it (pgBackRest refuses that)."""
    return dest.parent / f"{dest.name}.tablespaces"


def gather(req: Request, tablespaces: tuple[Tablespace, ...], data_dir: Path) -> TablespaceFacts:
    current = tuple(str(p) for p in files.tablespace_dirs(data_dir))
    if not req.in_place:
        root = side_root(req.dest)
        return TablespaceFacts(root.exists() or root.is_symlink(), files.is_empty_dir(root), current=current)
    occupied = tuple((t.location, _version_dirs(Path(t.location))) for t in tablespaces)
    free = tuple((t.location, files.free_bytes(Path(t.location))) for t in tablespaces)
    return TablespaceFacts(occupied=occupied, current=current, free=free)


def _version_dirs(location: Path) -> tuple[str, ...]:
    """The version directories in a tablespace location that hold files (what a restore would collide with)."""
    try:
        found = [p for p in location.iterdir() if VERSION_DIR.fullmatch(p.name) and p.is_dir()]
    except OSError:
        return ()
    return tuple(sorted(str(p) for p in found if not files.is_empty_dir(p)))


def place(req: Request, tablespaces: tuple[Tablespace, ...], facts: TablespaceFacts
          ) -> tuple[list[Placement], list[Verdict]]:
    """Where each tablespace goes, and what the plan says about it (refusals included)."""
    sizes = dict(facts.sizes) if facts.sizes is not None else {}
    verdicts = [] if facts.sizes is not None or not tablespaces else [
        Verdict(WARN, "the tablespaces' sizes are unknown (the backup's manifest could not be read)")]
    if not req.in_place:
        out, side = _side(req, tablespaces, facts, sizes)
        return out, verdicts + side
    occupied, free = dict(facts.occupied), dict(facts.free)
    out = []
    for t in tablespaces:
        busy = occupied.get(t.location, ())
        how = "restored (location empty)" if not busy else ("overwritten (--delta)" if req.delta else "moved aside")
        out.append(Placement(t.name, t.oid, t.location, t.location, how, () if req.delta else busy, sizes.get(t.oid)))
        if busy and req.delta:
            verdicts.append(Verdict(WARN, f"tablespace {t.name} at {t.location} is overwritten in place (--delta)"))
        verdicts += _room(t, sizes.get(t.oid), free.get(t.location))
    backed = {os.path.realpath(t.location) for t in tablespaces}
    for loc in facts.current:
        if os.path.realpath(loc) not in backed:
            verdicts.append(Verdict(WARN, f"tablespace location {loc} is not in the backup: it is left as it is "
                                          "(the restored cluster does not use it; remove it by hand once unused)"))
    return out, verdicts


def _room(t: Tablespace, size: int | None, free: int | None) -> list[Verdict]:
    """In place: the old version directory stays (moved aside) on the location's filesystem."""
    if size is None or free is None or free >= int(size * SPACE_MARGIN):
        return []
    return [Verdict(REFUSE, f"not enough space for tablespace {t.name} at {t.location}: it needs "
                            f"{human_bytes(int(size * SPACE_MARGIN))} (size + 10%), {human_bytes(free)} free")]


def _side(req: Request, tablespaces: tuple[Tablespace, ...], facts: TablespaceFacts, sizes: dict[int, int]
          ) -> tuple[list[Placement], list[Verdict]]:
    root = side_root(req.dest)
    out = [Placement(t.name, t.oid, t.location, str(root / t.name), "mapped", (), sizes.get(t.oid))
           for t in tablespaces]
    verdicts = []
    if tablespaces and facts.root_exists and not facts.root_empty:
        verdicts.append(Verdict(REFUSE, f"{root} (where this copy's tablespaces go) is not empty: remove it or "
                                        "choose another target directory"))
    prod = {os.path.realpath(p) for p in (*facts.current, *(t.location for t in tablespaces))}
    for p in out:  # by construction never; checked positively all the same
        if os.path.realpath(p.dest) in prod:
            verdicts.append(Verdict(REFUSE, f"tablespace {p.name} would be restored to {p.dest}, a production "
                                            "tablespace location"))
    if tablespaces:
        names = ", ".join(f"{t.name} ({t.location})" for t in tablespaces)
        verdicts.append(Verdict(OK, f"tablespaces restored under {root}, never at their production locations: "
                                    f"{names}"))
    return out, verdicts


def move_aside(placements: list[Placement], suffix: str) -> list[str]:
    """In place: rename each occupied version directory to ``<dir>.<suffix>`` (never deleted); where they went."""
    return [str(files.rename_aside(Path(d), suffix)) for p in placements for d in p.aside]


def with_placements(plan: Plan, placements: list[Placement], verdicts: list[Verdict]) -> Plan:
    """The plan with its tablespaces and what was said about them (the 'all passed' note redone)."""
    plan.tablespaces = placements
    plan.verdicts = passed([v for v in plan.verdicts if v.message != ALL_PASSED] + verdicts)
    return plan


def ensure_placed(ctx: Context, plan: Plan, dest: DestFacts | None = None) -> Plan:
    """The plan with its backup's tablespaces placed (asked of pgBackRest once: ``info --set``, and their sizes
    from the manifest). ``dest``: the destination's facts, so that in place the data directory's filesystem is
    asked for room for only what lands there."""
    b = plan.backup
    if b is None or b.tablespaces is not None:
        return plan
    detail = next((x for x in ctx.pgbackrest.info(backup_set=b.label).backups if x.label == b.label), None)
    found = detail.tablespaces if detail is not None and detail.tablespaces is not None else ()
    plan.backup = replace(b, tablespaces=found)
    facts = replace(gather(plan.request, found, ctx.settings.postgres.data_dir), sizes=_sizes(ctx, b.label, found))
    placements, verdicts = place(plan.request, found, facts)
    if dest is not None and plan.request.in_place and facts.sizes:
        data = files.device(plan.request.dest)  # an absent path: its nearest existing parent's
        elsewhere = sum(p.size or 0 for p in placements if files.device(Path(p.dest)) != data)
        whole = space_verdicts(plan.request, b, b.size, dest)
        plan.verdicts = [v for v in plan.verdicts if v not in whole]
        verdicts += space_verdicts(plan.request, b, b.size - elsewhere, dest)
    return with_placements(plan, placements, verdicts)


def _sizes(ctx: Context, label: str, found: tuple[Tablespace, ...]) -> tuple[tuple[int, int], ...] | None:
    if not found:
        return ()
    try:
        return tuple(ctx.pgbackrest.manifest(label, tablespace_bytes).items())
    except OpsdError as e:
        get_logger().warning("restore.tablespace_sizes_unknown", backup=label, error=str(e))
        return None


def prepare(plan: Plan, suffix: str, user: str, report: Callable[[str], None]) -> list[str]:
    """Just before pgBackRest writes: a side copy's tablespace directory created empty (its own); in place, the
    occupied version directories moved aside. What was moved where."""
    if not plan.request.in_place:
        if plan.tablespaces:
            files.make_empty_dir(side_root(plan.request.dest), user)
        return []
    moved = move_aside(plan.tablespaces, suffix)
    for m in moved:
        report(f"moved an old tablespace directory aside to {m}")
    return moved
