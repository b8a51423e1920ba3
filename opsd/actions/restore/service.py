"""Point-in-time restore: gather facts, plan, refuse or act (the files); restore_run.py starts and watches.

A side restore (default) goes into an empty directory with archive_mode=off and its own port, lock and
spool paths: it can never push WAL into the production repository. An in-place restore refuses unless the
cluster is proven stopped and moves the old data directory aside instead of deleting it (unless --delta --force).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from opsd.actions.restore import tablespaces
from opsd.actions.restore.plan import REFUSE, DestFacts, Plan, Request, in_place_verdicts, make_plan
from opsd.actions.restore.window import Window, compute_window
from opsd.adapters import files, sockets
from opsd.adapters.cluster import stop_evidence
from opsd.adapters.pgbackrest import StanzaInfo
from opsd.adapters.pgbackrest_conf import archive_async
from opsd.adapters.pgbackrest_prefetch import Prefetch, archive_get_command
from opsd.adapters.pgbackrest_restore import RestoreOptions
from opsd.adapters.walcache import SegmentCache, cache_name
from opsd.adapters.waldump import ArchiveReader, archive_reader
from opsd.context import Context
from opsd.core.records.jobs import RestoreResult
from opsd.core.records.runs import Run
from opsd.core.timeparse import pgbackrest_target
from opsd.core.wal import (
    ArchivedSegment,
    DivergenceVerdict,
    Stamped,
    Switch,
    archived_past_switch,
    divergences,
    judge,
    lost_past,
    parse_history,
)
from opsd.errors import OpsdError, RefusedError
from opsd.log import get_logger


def load_window(ctx: Context, ahead: Callable[[StanzaInfo], str | None] | None = None) -> tuple[StanzaInfo, Window]:
    """Read the repository (info, WAL listing, timeline history) and the last commit from the newest archived
    WAL of each timeline. ``ahead``: the backup set a restore will likely use, whose details (``info --set``)
    are read meanwhile."""
    info = ctx.pgbackrest.info()
    guess = ahead(info) if ahead is not None else None
    if guess:
        ctx.pgbackrest.info_ahead(guess)
    with _reader(ctx, info) as rd:
        timelines = _timelines(ctx, info, rd)
        window = compute_window(info, timelines.segments, rd.last_commit, timelines.switches)
    return info, window


@dataclass(frozen=True)
class Timelines:
    segments: list[ArchivedSegment]
    switches: tuple[Switch, ...]  # from the archived .history files of the current archive id
    branched_at: dict[int, datetime]  # when each timeline's .history file was archived
    archive_id: str | None  # the current one: its segments are the ones the switches speak of

    @property
    def current(self) -> list[ArchivedSegment]:
        """The segments of the current archive id (those the switches speak of)."""
        return [a for a in self.segments if not self.archive_id or a.archive_id in ("", self.archive_id)]

    @property
    def newest(self) -> int:
        """The newest timeline with WAL in the repository (of the current archive id)."""
        return max((a.segment.timeline for a in self.current), default=1)


def load_timelines(ctx: Context, info: StanzaInfo | None = None) -> Timelines:
    """The WAL listing and the timeline switches (the archived .history files), without reading any WAL."""
    info = info or ctx.pgbackrest.info()
    with _reader(ctx, info) as rd:
        return _timelines(ctx, info, rd)


@dataclass(frozen=True)
class JudgedTimelines:
    timelines: Timelines
    verdicts: list[DivergenceVerdict]  # older timelines archived after a newer one branched off them
    lost_before: tuple[Stamped, ...]  # the newest switch's parent: transactions past it archived before it


def judged_timelines(ctx: Context, info: StanzaInfo | None = None) -> JudgedTimelines:
    """The timelines, and each older timeline's WAL archived after a newer one branched off it, judged by its
    content (split brain, or a rewound primary's last WAL); and what the newest switch abandoned in WAL the old
    primary archived before it. A few segments are read, only when there are any."""
    info = info or ctx.pgbackrest.info()
    with _reader(ctx, info) as rd:
        t = _timelines(ctx, info, rd)
        verdicts = [judge(d, {name: rd.facts(name) for name in d.to_read()})
                    for d in divergences(t.current, t.switches, t.branched_at)]
        lost: tuple[Stamped, ...] = ()
        if t.switches:
            sw = t.switches[-1]
            early = archived_past_switch(t.current, sw, t.branched_at.get(sw.timeline))[:2]
            lost = lost_past(sw, [f for a in early if (f := rd.facts(a.segment.name)) is not None])
    return JudgedTimelines(t, verdicts, lost)


def _reader(ctx: Context, info: StanzaInfo) -> contextlib.AbstractContextManager[ArchiveReader]:
    """A reader of the archived WAL that remembers what it read, per archive id (``_timelines`` tells it which
    segments the repository lists now), and per cluster: a stanza created again reuses the archive id."""
    pg, o = ctx.settings.postgres, ctx.settings.opsd
    name = cache_name("segments", ctx.settings.pgbackrest.stanza, info.current_archive_id, info.current_system_id)
    cache = SegmentCache.load(o.state_dir / "walcache" / name, {}, o.run_as, info.current_system_id)
    return archive_reader(ctx.pgbackrest, ctx.runner, pg.bin_dir, o.state_dir, o.run_as, cache=cache)


def _timelines(ctx: Context, info: StanzaInfo, rd: ArchiveReader) -> Timelines:
    segments, histories = ctx.pgbackrest.archive_listing()
    switches: dict[int, Switch] = {}
    current = info.current_archive_id
    rd.cache.stamps = {a.segment.name: int(a.archived_at.timestamp()) for a in segments
                       if not current or a.archive_id in ("", current)}
    branched = {}
    for h in sorted(histories, key=lambda x: x.timeline):
        text = rd.text(h.name) if h.archive_id == current else None
        if text is not None:
            for sw in parse_history(h.timeline, text):  # a later history repeats earlier switches, without a time
                prev = switches.get(sw.timeline)
                switches[sw.timeline] = replace(sw, at=prev.at) if prev is not None else sw
            if h.timeline in switches:
                switches[h.timeline] = replace(switches[h.timeline], at=h.archived_at)
            if h.archived_at is not None:
                branched[h.timeline] = h.archived_at
    return Timelines(segments, tuple(sorted(switches.values(), key=lambda x: x.timeline)), branched, current)


def gather_facts(ctx: Context, req: Request) -> DestFacts:
    pg = ctx.settings.postgres
    sock = Path(pg.host) if pg.host.startswith("/") else None
    f = files.path_facts(req.dest)
    stop = None
    if req.in_place and f.is_dir and not f.empty:
        stop = stop_evidence(ctx.runner, pg.bin_dir, req.dest, pg.port, sock)
    return DestFacts(
        exists=f.exists, empty=f.empty, free_bytes=f.free_bytes,
        port_in_use=sockets.port_in_use(req.port, sock) if req.port else False, stop=stop,
        mount_point=req.in_place and f.mount_point, real_path=f.real,
    )


def likely_set(req: Request) -> Callable[[StanzaInfo], str | None]:
    """The set a plan will most likely choose (the one named, else the newest that ended before a time
    target): only a guess, to read its details ahead; the plan still chooses."""

    def guess(info: StanzaInfo) -> str | None:
        if req.set_label:
            return req.set_label
        t = req.target_time
        before = [b for b in info.backups if not b.error and (t is None or b.stop < t)]
        return before[-1].label if before else None

    return guess


def plan_restore(ctx: Context, req: Request) -> tuple[Plan, Window]:
    info, window = load_window(ctx, likely_set(req))
    facts = gather_facts(ctx, req)
    return tablespaces.ensure_placed(ctx, make_plan(req, info, window, facts, measured_runs(ctx)), facts), window


def measured_runs(ctx: Context) -> list[Run]:
    """Recent restores and drills, for the estimate. A disaster can take the state directory too: without a
    readable history the plan goes on (one warning line), only the estimate is missing."""
    try:
        return ctx.history.runs("restore", limit=20) + ctx.history.runs("drill", limit=20)
    except OpsdError as e:
        get_logger().warning("history.unreadable", error=str(e), consequence="no estimate from measured runs")
        return []


def recheck_in_place(ctx: Context, plan: Plan) -> None:
    """Just before the data directory is touched (under the restore lock; a confirmation prompt may have sat open
    for hours): prove again that the cluster is stopped."""
    refusals = [v.message for v in in_place_verdicts(plan.request, gather_facts(ctx, plan.request))
                if v.level == REFUSE]
    if refusals:
        raise RefusedError(f"refused at the last check before touching {plan.request.dest}: " + "; ".join(refusals))


_PROGRESS = re.compile(r"(\d+(?:\.\d+)?)%\)")


def progress_reporter(report: Callable[[str], None]) -> Callable[[str, str], None]:
    """Turn pgBackRest's per-file 'restore file ... (N%)' lines into a message every 10%."""
    state = {"next": 10.0, "t0": time.monotonic()}

    def on_line(stream: str, line: str) -> None:
        m = _PROGRESS.search(line)
        if m and "restore file" in line and float(m.group(1)) >= state["next"]:
            pct = float(m.group(1))
            state["next"] = (int(pct // 10) + 1) * 10.0
            report(f"restore {pct:.0f}% ({time.monotonic() - state['t0']:.0f}s elapsed)")

    return on_line


@dataclass(frozen=True)
class Launch:
    """Where a restore keeps its own files and how its server is started. A restore uses
    ``<state_dir>/restores``; a drill passes its scratch area, private socket and server overrides."""

    work_dir: Path
    lock: str = "restore"
    socket_dir: Path | None = None  # None: the production socket directory (or work_dir/run for TCP setups)
    process_max: int | None = None
    server_options: tuple[str, ...] = ()  # a drill's throwaway overrides (pg_ctl -o); never for a restore
    wait_timeout: float = 3600
    finish_promotion: bool = True  # after promotion: checkpoint, and drop the recovery settings from auto.conf
    spool_key: str | None = None  # the WAL prefetch spool's name under work_dir/spool (default: from the path)
    prefix: tuple[str, ...] = ()  # what pgBackRest and the server run under (a copy beside production: nice, ionice)


def default_launch(ctx: Context, wait_timeout: float = 3600) -> Launch:
    return Launch(work_dir=ctx.settings.opsd.state_dir / "restores", wait_timeout=wait_timeout)


def restore_files(ctx: Context, plan: Plan, launch: Launch, report: Callable[[str], None]) -> RestoreResult:
    """Run pgBackRest restore (the caller holds the lock). Raises RefusedError for a refused plan."""
    plan = tablespaces.ensure_placed(ctx, plan)
    if plan.refused:
        raise RefusedError("refused: " + "; ".join(plan.refusals()))
    req, backup = plan.request, plan.backup
    assert backup is not None
    user = ctx.settings.opsd.run_as
    files.ensure_dir(launch.work_dir, user)
    moved, suffix = None, "before-restore-" + ctx.now().strftime("%Y%m%dT%H%M%S")
    if req.in_place and not req.delta and not files.is_empty_dir(req.dest):
        # the real directory (a symlinked data_dir keeps pointing at the new, empty one)
        moved = files.move_aside(files.real_path(req.dest), suffix, user)
        report(f"moved the old data directory aside to {moved}")
    elif not req.in_place:
        files.make_empty_dir(req.dest, user)
    ts_moved = tablespaces.prepare(plan, suffix, user, report)
    options = _options(ctx, plan, launch)
    report(f"restoring {backup.label} into {req.dest} ...")
    t0 = time.monotonic()
    try:
        ctx.pgbackrest.restore(options, on_line=progress_reporter(report))
    except OpsdError as e:
        e.hint = (f"the partial restore is left in {req.dest} (not started)"
                  + (f"; the previous data directory is at {moved}" if moved else "")
                  + (f"; the previous tablespace directories are at {', '.join(ts_moved)}" if ts_moved else ""))
        raise
    restore_secs = time.monotonic() - t0
    return RestoreResult(
        backup=backup.label, destination=str(req.dest), restored_bytes=backup.size,
        restore_seconds=restore_secs, restore_rate=backup.size / max(restore_secs, 0.001), started=False,
        recovery_seconds=None, replay_rate=None, last_replayed_xact=None, state="restored (not started)",
        moved_aside=str(moved) if moved else None, log_file=None,
        tablespaces=[f"{p.name}: {p.source} -> {p.dest}" for p in plan.tablespaces], tablespaces_moved_aside=ts_moved)


def side_socket_dir(ctx: Context, launch: Launch) -> Path:
    if launch.socket_dir is not None:
        return launch.socket_dir
    host = ctx.settings.postgres.host
    return Path(host) if host.startswith("/") else files.ensure_dir(launch.work_dir / "run", ctx.settings.opsd.run_as)


def _target(plan: Plan) -> tuple[str, str | None]:
    req = plan.request
    if plan.pin is not None:
        return plan.pin.target_type, plan.pin.target
    if req.target_type == "time" and req.target_time is not None:
        return "time", pgbackrest_target(req.target_time)
    if req.target_type in ("lsn", "xid", "name"):
        return req.target_type, req.target_value
    return req.target_type, None


def _prefetch(ctx: Context, launch: Launch, pg1_path: str) -> Prefetch:
    """A spool of this restore's own, emptied now: never production's (whose queue belongs to its archiver), never
    another copy's (a segment of the same name from another archive id must not be replayed)."""
    pb, user = ctx.settings.pgbackrest, ctx.settings.opsd.run_as
    key = launch.spool_key or hashlib.sha256(pg1_path.encode()).hexdigest()[:12]
    spool = files.fresh_private_dir(files.ensure_dir(launch.work_dir / "spool", user) / key, user, empty=True)
    return Prefetch(str(spool), int(pb.wal_prefetch_queue), pb.prefetch_processes)


def _options(ctx: Context, plan: Plan, launch: Launch) -> RestoreOptions:
    """A side copy gets its port, socket, listen address and archive_mode=off in postgresql.auto.conf (not on
    pg_ctl's command line, which 'pg_ctl restart' would replay from postmaster.opts for good): safe while it is a
    copy, and 'opsd setup' (ALTER SYSTEM) can turn it into a primary."""
    req = plan.request
    target_type, target = _target(plan)
    side = not req.in_place
    user = ctx.settings.opsd.run_as
    spool = None
    recovery: tuple[tuple[str, str], ...] = ()
    if side:
        recovery = (("unix_socket_directories", str(side_socket_dir(ctx, launch))),
                    ("listen_addresses", "localhost"))
    # the real directory: pgBackRest takes the owner of its files from pg1-path itself, and a data_dir symlink is
    # usually root's ('unable to set ownership ... Operation not permitted')
    pg1_path = str(files.real_path(req.dest)) if req.in_place else str(req.dest)
    lock_path = str(files.ensure_dir(launch.work_dir / "lock", user)) if side else None
    if ctx.settings.pgbackrest.wal_prefetch:
        command = archive_get_command(ctx.pgbackrest.base, pg1_path, lock_path, _prefetch(ctx, launch, pg1_path))
        recovery += (("restore_command", command),)
    elif side and archive_async(ctx.settings.pgbackrest.config, ctx.settings.pgbackrest.stanza):
        spool = str(files.ensure_dir(launch.work_dir / "spool", user))
    return RestoreOptions(
        pg1_path=pg1_path, set=plan.backup.label if plan.backup else None, target_type=target_type,
        target=target, target_action="pause" if req.pause else "promote",
        # pgBackRest takes a timeline only with a target it can follow one to (not 'immediate')
        target_timeline=plan.timeline if target_type in ("time", "xid", "lsn", "name") else None,
        exclusive=req.exclusive and target_type in ("time", "xid", "lsn"),
        port=req.port if side else None, archive_off=side, delta=req.delta,
        lock_path=lock_path, spool_path=spool, process_max=launch.process_max, recovery_options=recovery,
        prefix=launch.prefix, tablespace_root=str(tablespaces.side_root(req.dest)) if side else None,
        tablespaces=plan.backup.tablespaces or () if plan.backup else (),
        db_include=req.db_include, db_exclude=req.db_exclude,  # a copy of one database (actions/copies/partial.py)
    )
