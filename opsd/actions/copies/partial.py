"""A copy of one database (pure decisions, and the manifest read that feeds them): pgBackRest restores the
database a job needs (``--db-include``; for a table in ``postgres``, every user database excluded with
``--db-exclude``) and the system databases (template0, template1, postgres: always restored); every other user
database comes back as sparse, zeroed files that no one connects to. The bytes restored come from the chosen
backup's manifest (each file's size, by database OID), the same numbers pgBackRest restores from."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from opsd.actions.restore.plan import ALL_PASSED, OK, WARN, DestFacts, Plan, Verdict, passed, space_verdicts
from opsd.adapters.pgbackrest_restore import ManifestSizes, manifest_sizes
from opsd.context import Context
from opsd.core.units import human_bytes
from opsd.errors import OpsdError
from opsd.log import get_logger

SYSTEM = ("postgres", "template0", "template1")  # pgBackRest restores these whatever --db-include says
# Once recovery is consistent, PostgreSQL PANICs on a WAL record for a zeroed page ('WAL contains references to
# invalid pages'), and a skipped database's pages are zeroed: pgBackRest's guide names ignore_invalid_pages
# (PostgreSQL >= 13) for a selective restore, and checking the log afterwards that no page of a restored database
# was reported (:func:`invalid_pages`).
SERVER_OPTIONS = ("-c ignore_invalid_pages=on",)
INVALID_PAGE = re.compile(r"page \d+ of relation (?:base/(\d+)/|pg_tblspc/\d+/[^/\s]+/(\d+)/)\S* "
                          r"(?:is uninitialized|does not exist)")


@dataclass(frozen=True)
class Partial:
    """What a copy restores. ``include``/``exclude``: pgBackRest's --db-include / --db-exclude (both empty: the
    whole cluster); ``skipped``: the user databases restored as sparse files, never connected to."""

    dbname: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    restored_bytes: int | None = None  # the files that land in the scratch area (None: unknown)
    cluster_bytes: int | None = None
    source: str = ""  # where the numbers come from
    why_whole: str | None = None  # why the whole cluster is restored (None: it is not)

    @property
    def partial(self) -> bool:
        return bool(self.include or self.exclude)


def restored(include: tuple[str, ...], exclude: tuple[str, ...]) -> frozenset[str] | None:
    """The databases with real files in a copy restored with these options (None: all of them)."""
    return frozenset({*SYSTEM, *include}) if include or exclude else None


def invalid_pages(log_lines: Iterable[str], restored_oids: set[int]) -> list[str]:
    """The server log's reports of invalid pages in a database the copy restored (those of a skipped database,
    zeroed on purpose, are expected)."""
    out = []
    for line in log_lines:
        m = INVALID_PAGE.search(line)
        if m and int(m.group(1) or m.group(2)) in restored_oids:
            out.append(m.group(0))
    return out


def decide(sizes: ManifestSizes, dbname: str, label: str) -> Partial:
    """Only ``dbname`` and the system databases, when the backup has ``dbname`` and other user databases."""
    source = f"backup {label}'s manifest"
    users = [d.name for d in sizes.databases if d.name not in SYSTEM]
    if sizes.of(dbname) is None:
        return Partial(dbname, restored_bytes=sizes.total, cluster_bytes=sizes.total, source=source,
                       why_whole=f"database {dbname} is not in backup {label} (created since?): the whole cluster "
                                 "is restored")
    others = tuple(sorted(u for u in users if u != dbname))
    if not others:
        return Partial(dbname, restored_bytes=sizes.total, cluster_bytes=sizes.total, source=source,
                       why_whole="no other user database in the backup: the whole cluster is restored")
    skipped = sum(b.bytes for n in others if (b := sizes.of(n)) is not None)
    include, exclude = ((), others) if dbname in SYSTEM else ((dbname,), ())
    return Partial(dbname, include=include, exclude=exclude, skipped=others, restored_bytes=sizes.total - skipped,
                   cluster_bytes=sizes.total, source=source)


def note(p: Partial, wal_bytes: int) -> Verdict:
    """What the plan says the copy restores, and where the figure comes from."""
    if p.restored_bytes is None:
        return Verdict(WARN, f"the whole cluster is restored: {p.why_whole}")
    if not p.partial:
        return Verdict(OK, f"{p.why_whole} ({human_bytes(p.restored_bytes)}, from {p.source})")
    return Verdict(OK, (
        f"restores database {p.dbname} and the system databases only: {human_bytes(p.restored_bytes)} of the "
        f"cluster's {human_bytes(p.cluster_bytes or 0)} (from {p.source}), plus up to {human_bytes(wal_bytes)} of "
        f"WAL to replay; {', '.join(p.skipped)} {'comes' if len(p.skipped) == 1 else 'come'} back as sparse files, "
        "never connected to"))


def plan_partial(ctx: Context, plan: Plan, dbname: str, facts: DestFacts) -> tuple[Plan, Partial]:
    """The plan for a copy of ``dbname`` only: pgBackRest's options on its request, and the space check made
    for the bytes restored (and the WAL replayed) instead of the whole backup. Without a readable manifest:
    the whole cluster, said in a warning."""
    b = plan.backup
    if b is None or plan.refused:
        return plan, Partial(dbname)
    try:
        p = decide(ctx.pgbackrest.manifest(b.label, manifest_sizes), dbname, b.label)
    except OpsdError as e:
        get_logger().warning("copy.manifest_unreadable", backup=b.label, error=str(e))
        p = Partial(dbname, why_whole=f"the manifest of {b.label} could not be read ({e})")
    return apply(plan, p, facts), p


def apply(plan: Plan, p: Partial, facts: DestFacts) -> Plan:
    """The plan with pgBackRest's options for ``p`` and its space check made for what ``p`` restores."""
    b = plan.backup
    assert b is not None
    plan.request = replace(plan.request, db_include=p.include, db_exclude=p.exclude)
    verdicts = [v for v in plan.verdicts if v.message != ALL_PASSED]
    if p.partial and p.restored_bytes is not None:
        whole = space_verdicts(plan.request, b, b.size, facts)
        verdicts = [v for v in verdicts if v not in whole]
        verdicts += space_verdicts(plan.request, b, p.restored_bytes + plan.wal_bytes, facts)
    plan.verdicts = passed([*verdicts, note(p, plan.wal_bytes)])
    return plan


def connecting_to(ctx: Context, home: str | None) -> Context:
    """``ctx`` whose [postgres] dbname is ``home``: a partial copy's readiness checks connect to a database it
    restored, never to a zeroed one."""
    if home is None:
        return ctx
    pg = ctx.settings.postgres.model_copy(update={"dbname": home})
    return replace(ctx, settings=ctx.settings.model_copy(update={"postgres": pg}))


def allocated_bytes(*dirs: Path) -> int:
    """What the files under ``dirs`` really take on disk (allocated blocks: a sparse file counts for its data)."""
    total = 0
    for d in dirs:
        for root, _dirs, names in os.walk(d):
            for n in names:
                try:
                    total += os.lstat(os.path.join(root, n)).st_blocks * 512
                except OSError:
                    continue
    return total
