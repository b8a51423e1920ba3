"""The one room where a copy of production lives: planned beside production's space and priority, recorded
before its files exist, restored by the restore machinery, started quarantined (``quarantine.py``), cut off
from the outside (``db/quarantine.py``), handed to its job, and torn down whatever happens (or kept, with an
expiry). Drills, ``restore --table`` and ``wal find --catalog-from-copy`` ask for one; none starts a postgres
of its own.

Safety: the copy lives in ``<scratch_dir>/drill-*``, listens on a Unix socket in a private directory only,
runs with archive_mode=off (it can never push WAL into the repository), and a space watcher stops it before
it can fill a filesystem production writes to."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from opsd.actions.copies import partial, registry
from opsd.actions.copies.quarantine import LOW_PRIORITY, parse_libraries, preload, server_options
from opsd.actions.restore.plan import DestFacts, Plan, Request
from opsd.actions.restore.run import start_and_watch
from opsd.actions.restore.service import Launch, gather_facts, restore_files
from opsd.actions.restore.tablespaces import side_root
from opsd.adapters import files, processes
from opsd.context import Context
from opsd.core.records.checks import OK, CheckResult
from opsd.core.records.copies import CopyRecord
from opsd.core.records.jobs import RestoreResult
from opsd.core.units import human_bytes
from opsd.db.connection import SAFE_SEARCH_PATH, ConnectTo, per_database
from opsd.db.quarantine import Detached, database_oids, detach
from opsd.db.queries import NameRow, fetch_one
from opsd.errors import OpsdError, RefusedError
from opsd.log import get_logger

Report = Callable[[str], None]
# replay speed on a throwaway copy: read ahead in the WAL and prefetch the blocks it will touch (PostgreSQL 15's
# recovery_prefetch), deep enough for a disk array; fewer restartpoints (restored WAL is not kept in pg_wal)
REPLAY_OPTIONS = ("-c recovery_prefetch=try", "-c maintenance_io_concurrency=64", "-c wal_decode_buffer_size=4MB",
                  "-c max_wal_size=16GB", "-c checkpoint_timeout=1h")
WATCH_INTERVAL = 2.0
PORTS = 20  # a copy takes the first free port from drill.port on (a kept copy holds its own)


def refuse_unsafe_scratch(ctx: Context) -> None:
    """A scratch directory another local user can write or replace could aim a copy's signals, writes and
    removals at production (a planted symlink, pid file or pg_hba.conf): refused before anything is done."""
    problem = files.private_dir_problem(registry.scratch_root(ctx), ctx.settings.opsd.run_as)
    if problem:
        raise RefusedError(f"drill.scratch_dir is not private: {problem}",
                           hint="use a directory only opsd.run_as (or root) can write, e.g. the default "
                                "<state_dir>/scratch")


def scratch_launch(ctx: Context) -> Launch:
    d, s = ctx.settings.drill, ctx.settings
    user = s.opsd.run_as
    work = files.ensure_dir(registry.scratch_root(ctx) / "work", user)
    sock = files.fresh_private_dir(work / "run", user)
    hba = work / "pg_hba.conf"
    files.write_private(hba, "# opsd copy: local socket only, in a private directory (mode 700)\n"
                             "local all all trust\n", user)
    options = (f"-c hba_file={hba}", f"-c shared_buffers={d.shared_buffers}", "-c logging_collector=off",
               "-c cluster_name=opsd-copy", "-c hot_standby=on", *REPLAY_OPTIONS)
    prefix = LOW_PRIORITY if d.low_priority(s.beside_production) else ()
    return Launch(work_dir=work, lock="drill", socket_dir=sock, process_max=d.process_max, server_options=options,
                  wait_timeout=d.recovery_timeout.total_seconds(), finish_promotion=False, spool_key="drill",
                  prefix=prefix)


def copy_port(ctx: Context) -> int:
    """The first port from drill.port on that no recorded copy holds and nothing listens on."""
    from opsd.adapters import sockets

    base, sock = ctx.settings.drill.port, registry.scratch_root(ctx) / "work" / "run"
    taken = registry.used_ports(ctx)
    for port in range(base, min(base + PORTS, 65536)):
        if port not in taken and not sockets.port_in_use(port, sock):
            return port
    raise RefusedError(f"no free port for a copy in {base}..{base + PORTS - 1}: see 'opsd scratch list'")


# --------------------------------------------------------------------------- production's space
def floor_bytes(ctx: Context) -> int:
    """Free space a copy must leave on the scratch filesystem: drill.space_floor / _percent when that
    filesystem also holds production's data directory, pg_wal or a tablespace; 0 elsewhere."""
    s = ctx.settings
    if not s.beside_production:
        return 0
    data = s.postgres.data_dir
    prod = [data, Path(os.path.realpath(data / "pg_wal")), *files.tablespace_dirs(data)]
    scratch = files.device(registry.scratch_root(ctx))
    if scratch is None or scratch not in {files.device(p) for p in prod if p.exists()}:
        return 0
    total = files.total_bytes(registry.scratch_root(ctx)) or 0
    return max(int(s.drill.space_floor), total * s.drill.space_floor_percent // 100)


def facts(ctx: Context, req: Request) -> DestFacts:
    """The destination's facts for planning a copy, with the floor production's filesystem keeps."""
    return replace(gather_facts(ctx, req), floor_bytes=floor_bytes(ctx))


class SpaceWatcher(threading.Thread):
    """Stops the copy (its server, and a restore still writing) when free space falls below the floor."""

    def __init__(self, ctx: Context, dest: Path, floor: int) -> None:
        super().__init__(name="opsd-copy-space", daemon=True)
        self.root, self.dest, self.floor = registry.scratch_root(ctx), dest, floor
        self.done = threading.Event()
        self.tripped: str | None = None

    def run(self) -> None:
        while not self.done.wait(WATCH_INTERVAL):
            free = files.free_bytes(self.root)
            if free is not None and free < self.floor:
                self.tripped = (f"stopped to protect production: {human_bytes(free)} free on the filesystem of "
                                f"{self.root}, which production also writes to (floor {human_bytes(self.floor)})")
                get_logger().error("copy.space_stopped", copy=str(self.dest), free=free, floor=self.floor)
                processes.stop_postmaster(self.dest, timeout=10)
                processes.kill_mentioning(str(self.dest))
                return


# --------------------------------------------------------------------------- the room
@dataclass
class Room:
    ctx: Context
    record: CopyRecord
    launch: Launch
    watcher: SpaceWatcher | None = None
    detached: Detached = field(default_factory=Detached)
    cleaned: list[str] = field(default_factory=list)  # leftovers removed before this copy was made
    superuser: str | None = None  # the copy's bootstrap superuser, once it runs (None: [postgres] user)
    # a partial copy (copies/partial.py): the databases with real files, and the one opsd's own SQL goes to
    restored_dbs: frozenset[str] | None = None
    home: str | None = None

    @property
    def dest(self) -> Path:
        return Path(self.record.directory)

    @property
    def port(self) -> int:
        return self.record.port

    def restore(self, plan: Plan, report: Report) -> RestoreResult:
        """The files, by the restore machinery; a partial copy (copies/partial.py) with pgBackRest's
        --db-include/--db-exclude, and what it really takes on disk measured."""
        req = plan.request
        self.restored_dbs = partial.restored(req.db_include, req.db_exclude)
        result = restore_files(self.ctx, plan, self.launch, report)
        if self.restored_dbs is None:
            return result
        self.home = req.db_include[0] if req.db_include else "postgres"
        used = partial.allocated_bytes(self.dest, side_root(self.dest))
        report(f"restored {human_bytes(used)} on disk in the scratch area (only {', '.join(sorted(self.restored_dbs))}"
               f"; backup {result.backup} holds {human_bytes(result.restored_bytes)})")
        return result.model_copy(update={"restored_bytes": used,
                                         "restore_rate": used / max(result.restore_seconds, 0.001)})

    def start(self, plan: Plan, restored: RestoreResult, report: Report) -> RestoreResult:
        """Start the copy quarantined, wait for recovery, then cut it off from the outside world before anything
        but opsd's own SQL runs on it."""
        kept, dropped = preload(self._production_preload(), self.ctx.settings.drill.preload_allow)
        extra = partial.SERVER_OPTIONS if self.restored_dbs is not None else ()
        launch = replace(self.launch, server_options=(*self.launch.server_options, *server_options(kept), *extra))
        if dropped:
            report(f"the copy starts without {', '.join(dropped)} (drill.preload_allow: "
                   f"{', '.join(self.ctx.settings.drill.preload_allow) or 'nothing'})")
        recovered = start_and_watch(partial.connecting_to(self.ctx, self.home), plan, launch, restored, report)
        with self.connect()(self.home or self.ctx.settings.postgres.dbname) as conn:
            self.superuser = fetch_one(conn, "copy_superuser", NameRow).name
            oids = database_oids(conn) if self.restored_dbs is not None else {}
        self._trust(recovered, {oid for name, oid in oids.items() if name in (self.restored_dbs or ())})
        self.record = self.record.model_copy(update={"postmaster_pid": processes.pid_in_file(self.dest),
                                                     "preload_dropped": dropped})
        registry.record(self.ctx, self.record)
        self.detached = detach(self.connect(), self.restored_dbs, self.home or "postgres")
        report(f"quarantined the copy: {self.quarantine().message}")
        return recovered

    def _trust(self, recovered: RestoreResult, restored_oids: set[int]) -> None:
        """A partial copy recovers with ignore_invalid_pages: an invalid page reported in a database it restored
        means its contents cannot be trusted (those of a skipped database are expected)."""
        if not restored_oids or not recovered.log_file:
            return
        try:
            with open(recovered.log_file, encoding="utf-8", errors="replace") as f:
                bad = partial.invalid_pages(f, restored_oids)
        except OSError:
            return
        if bad:
            raise OpsdError(f"recovery of the copy reported {len(bad)} invalid page(s) in a database it restored "
                            f"(first: {bad[0]}): its contents cannot be trusted",
                            hint=f"server log: {recovered.log_file}")

    def quarantine(self) -> CheckResult:
        """What the copy was cut off from: the preload libraries it started without, what was detached."""
        d, dropped = self.detached, self.record.preload_dropped
        without = f"started without {', '.join(dropped)}; " if dropped else ""
        return CheckResult("quarantine", OK, f"{without}detached {d.summary()}; socket only, archive off, no "
                                             "replication workers",
                           {"preload_dropped": list(dropped), "subscriptions": list(d.subscriptions),
                            "slots": list(d.slots), "user_mappings": list(d.user_mappings),
                            **({"skipped_databases": list(d.skipped)} if d.skipped else {})})

    def _production_preload(self) -> list[str]:
        """Production's shared_preload_libraries, as the restored configuration says (postgres -C)."""
        pg, user = self.ctx.settings.postgres, self.ctx.settings.opsd.run_as
        files.ensure_side_config(self.dest, user)
        res = self.ctx.runner.run([str(pg.bin_dir / "postgres"), "-D", str(self.dest), "-C",
                                   "shared_preload_libraries"], timeout=60, log_output=False)
        if not res.ok:
            raise OpsdError(f"cannot read the copy's shared_preload_libraries: {res.stderr.strip()[-300:]}")
        return parse_libraries(res.stdout.strip())

    def connect(self, statement_timeout: timedelta | None = None,
                search_path: str | None = SAFE_SEARCH_PATH) -> ConnectTo:
        """Connections to any database of the copy (its private socket; search_path pg_catalog, pg_temp unless
        told otherwise: None keeps the database's own, for the operator's smoke queries)."""
        s = self.ctx.settings
        update: dict[str, object] = {"host": str(self.launch.socket_dir), "port": self.port,
                                     "user": self.superuser or s.postgres.user}
        if statement_timeout is not None:
            update["statement_timeout"] = statement_timeout
        return per_database(s.postgres.model_copy(update=update), s.opsd.run_as, search_path)


def _new_record(ctx: Context, purpose: str, dest: Path, port: int, socket_dir: Path) -> CopyRecord:
    me = os.getpid()
    return CopyRecord(id=dest.name, purpose=purpose, stanza=ctx.settings.pgbackrest.stanza, directory=str(dest),
                      port=port, socket_dir=str(socket_dir), host=socket.gethostname(), pid=me,
                      pid_started=processes.start_ticks(me), started_at=ctx.now())


@contextlib.contextmanager
def copy_room(ctx: Context, purpose: str, dest: Path, report: Report, *, port: int | None = None,
              keep: bool = False, keep_for: timedelta | None = None) -> Iterator[Room]:
    """A copy's whole life, under the drill lock: leftovers of crashed or expired copies removed first, the
    copy recorded, and at the end torn down and unrecorded (``keep``: kept until drill.keep_for from now)."""
    user = ctx.settings.opsd.run_as
    refuse_unsafe_scratch(ctx)
    files.ensure_dir(registry.scratch_root(ctx), user)
    with files.exclusive_lock(ctx.lock_dir, "drill", user, f"opsd {purpose} copy"):
        cleaned = [v.record.directory for v in registry.clean(ctx, everything=False, report=report)]
        launch = scratch_launch(ctx)
        assert launch.socket_dir is not None
        room = Room(ctx, _new_record(ctx, purpose, dest, port or copy_port(ctx), launch.socket_dir), launch,
                    cleaned=cleaned)
        registry.record(ctx, room.record)
        floor = floor_bytes(ctx)
        if floor:
            room.watcher = SpaceWatcher(ctx, dest, floor)
            room.watcher.start()
        try:
            yield room
        except OpsdError as e:
            if room.watcher is not None and room.watcher.tripped:
                raise OpsdError(room.watcher.tripped, hint=f"the copy was stopped; {e}") from None
            raise
        finally:
            if room.watcher is not None:
                room.watcher.done.set()
            kept = keep and room.dest.exists() and not (room.watcher and room.watcher.tripped)
            _leave(ctx, room, (keep_for or ctx.settings.drill.keep_for) if kept else None, report)


def _leave(ctx: Context, room: Room, keep_for: timedelta | None, report: Report) -> None:
    if keep_for is not None:
        until = ctx.now() + keep_for
        room.record = room.record.model_copy(update={"kept": True, "expires_at": until})
        registry.record(ctx, room.record)
        report(f"kept {room.dest} (port {room.port}, socket {room.launch.socket_dir}) until {until:%Y-%m-%d %H:%M %Z}; "
               "then it is stopped and removed ('opsd scratch clean --all' removes it now)")
        return
    if room.dest.exists():
        report(f"tearing down {room.dest} ...")
    teardown(ctx, room.record)


def teardown(ctx: Context, rec: CopyRecord) -> None:
    """Never raises: a teardown problem is logged, and the record stays for the next cleanup to find."""
    try:
        registry.remove_copy(ctx, rec)
        spool = registry.scratch_root(ctx) / "work" / "spool" / "drill"
        if spool.exists():  # the WAL prefetched ahead of replay (up to [pgbackrest] wal_prefetch_queue)
            files.fresh_private_dir(spool, ctx.settings.opsd.run_as, empty=True)
    except OpsdError as e:
        get_logger().error("copy.teardown_failed", scratch=rec.directory, error=str(e))
