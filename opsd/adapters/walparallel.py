"""Decode a range of archived WAL on every core: segments fetched through pgBackRest (never pg_wal, so it works
when the primary is gone) into a private directory, ahead of decoding; each task (walscan.plan_tasks: a chunk of
segments) decoded by its own pg_waldump and parsed in its own process (parsing is Python: threads would share
one core); the results fed to the sink in WAL order, as one pg_waldump over the whole range would have.

Bounded: at most ``window`` tasks are fetched or decoded at once, and a task's segments are deleted once its
events are fed. The parser's one piece of state across tasks (the time of the last transaction end, which a
restore point takes as ``after``) is carried over at the merge.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from opsd import log
from opsd.adapters.pgbackrest import PgBackRest
from opsd.adapters.runner import ProcessRunner, Runner
from opsd.adapters.walscan import RMGRS, Parser, Progress, Task, _judge_end, plan_tasks
from opsd.core.wal import SEGMENT_BYTES, Segment, lsn_text, lsn_to_int
from opsd.core.walfind import Change, Created, End, Event, Keep, Point
from opsd.errors import OpsdError, RepositoryError

Packed = tuple[Any, ...]  # an event as a plain tuple: (kind index, its fields...), cheap to pickle
_KINDS: tuple[type[Change] | type[Created] | type[End] | type[Point], ...] = (Change, Created, End, Point)
_FIELDS = tuple(tuple(f.name for f in fields(k)) for k in _KINDS)


def pack(e: Event) -> Packed:
    if isinstance(e, Change):
        return 0, e.xid, e.node, e.kind, e.rows
    if isinstance(e, Created):
        return 1, e.xid, e.node
    if isinstance(e, End):
        return 2, e.xid, e.lsn, e.time, e.committed, e.subxacts, e.dropped_nodes, e.dropped_oids, e.database
    return 3, e.name, e.lsn, e.after


def unpack(p: Packed) -> Event:
    """The event again, rebuilt as pickle rebuilds an object (its fields set, no __init__: the decoding process
    made it once already); a million of them are rebuilt in the main process for a day of WAL."""
    kind = _KINDS[p[0]]
    e = object.__new__(kind)
    e.__dict__.update(zip(_FIELDS[p[0]], p[1:], strict=True))
    return e


@dataclass(frozen=True)
class DumpSpec:
    """What every task shares, as plain data (it goes to the decoding processes)."""

    pg_waldump: str
    tmp: str
    rmgrs: tuple[str, ...] = RMGRS
    keep: Keep | None = None


@dataclass(frozen=True)
class Decoded:
    """A task's records: per segment where records start (in WAL order), its events packed; the time of the
    task's last transaction end; the error that ended it early (what was read before it is kept)."""

    segments: list[tuple[int, list[Packed]]]
    last_time: datetime | None
    error: str | None = None


class _Past(Exception):
    """The first record of the next task: this task is complete (its pg_waldump is stopped)."""


def task_argv(spec: DumpSpec, task: Task) -> list[str]:
    # -e at the end of the last segment: pg_waldump stops there quietly, instead of looking for the next file for
    # 5 seconds; a task with a next one is stopped at that task's first record
    return [spec.pg_waldump, "-p", spec.tmp, "-t", str(task.timeline), "-s", lsn_text(task.first * SEGMENT_BYTES),
            "-e", lsn_text((task.last + 1) * SEGMENT_BYTES), *(a for r in spec.rmgrs for a in ("-r", r))]


def decode(spec: DumpSpec, task: Task, run_as: str | None = None) -> Decoded:
    """In a decoding process: one task through the runner seam (timeout, OS user, process group)."""
    return decode_with(ProcessRunner(run_as), spec, task)


def decode_with(runner: Runner, spec: DumpSpec, task: Task) -> Decoded:
    parser = Parser(spec.keep)
    out: list[tuple[int, list[Packed]]] = []

    key = [""]  # the segment part of the last record's LSN as printed (less its last 6 digits)

    def on_line(stream: str, line: str) -> None:
        rec = parser.record(line) if stream == "stdout" else None
        if rec is None:
            return
        if rec[0][:-6] != key[0]:  # a new segment (the stop is at a segment's start)
            key[0] = rec[0][:-6]
            seg = lsn_to_int(rec[0]) // SEGMENT_BYTES
            if task.stop is not None and seg >= task.stop // SEGMENT_BYTES:
                raise _Past
            out.append((seg, []))
        e = parser.event(rec)
        if e is not None:
            out[-1][1].append(pack(e))

    try:
        res = runner.run(task_argv(spec, task), timeout=600, env={"TZ": "UTC"}, log_output=False, on_line=on_line,
                         keep_stdout=False)
        _judge_end(res.returncode, res.stderr, Segment(task.timeline, task.last))
    except _Past:
        pass
    except (OpsdError, ValueError) as e:  # typed errors do not always survive pickling: sent back as text
        return Decoded(out, parser.last_time, str(e))
    return Decoded(out, parser.last_time, task.missing)


@dataclass
class Merge:
    """Feeds tasks' results to the sink in order: progress as each segment is entered, restore points' ``after``
    from the tasks before when their own task had no transaction end before them."""

    sink: Callable[[Event], None]
    total: int
    on_progress: Callable[[Progress], None] | None = None
    last_time: datetime | None = None
    entered: int = 0
    t0: float = field(default_factory=time.monotonic)

    def feed(self, task: Task, got: Decoded) -> None:
        """Raises RepositoryError after feeding what was read, when the task ended early."""
        for segno, events in got.segments:
            self.entered += 1
            if self.on_progress is not None:
                name = Segment(task.timeline, segno).name
                self.on_progress(Progress(self.entered, self.total, name, time.monotonic() - self.t0))
            for p in events:
                e = unpack(p)
                if isinstance(e, Point) and e.after is None and self.last_time is not None:
                    e = replace(e, after=self.last_time)
                self.sink(e)
        self.last_time = got.last_time or self.last_time
        if got.error is not None:
            raise RepositoryError(got.error)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def _log_like(level: int, fmt: str) -> None:
    log.configure(logging.getLevelName(level).lower(), fmt=fmt)


def _log_setup() -> tuple[int, str]:
    """The level and format this process logs with (the workers log as it does: to stderr, never stdout)."""
    renderer = structlog.get_config()["processors"][-1]
    fmt = "json" if isinstance(renderer, structlog.processors.JSONRenderer) else \
        "console" if isinstance(renderer, structlog.dev.ConsoleRenderer) else "journal"
    return int(structlog.get_logger().bind().get_effective_level()), fmt


def process_pool(n: int) -> Executor:
    """Worker processes started from a fork server (not forked from a process holding threads and locks),
    logging as this process does."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["opsd.adapters.walparallel"])
    return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_log_like, initargs=_log_setup())


Decoder = Callable[[DumpSpec, Task], Decoded]
Fetched = list[tuple[Segment, "Future[bool]"]]


@dataclass
class WalScanner:
    pgbr: PgBackRest
    bin_dir: Path
    tmp: Path
    workers: int = 2  # segments fetched at once
    procs: int = 1  # decoding processes
    chunk: int = 4  # segments a task (the last one shared with the next task)
    rmgrs: tuple[str, ...] = RMGRS
    keep: Keep | None = None  # the file nodes whose row changes are wanted (None: all)
    run_as: str | None = None
    executor: Callable[[int], Executor] = process_pool
    decoder: Decoder | None = None  # default: decode() in the executor's processes

    def scan(self, path: list[Segment], sink: Callable[[Event], None],
             on_progress: Callable[[Progress], None] | None = None, enough: Callable[[], bool] | None = None) -> None:
        """Every event of ``path`` (segments in WAL order, on the timelines recovery follows) into ``sink`` in WAL
        order, with a progress report as it enters each segment; ``enough`` stops after the task where it turns
        true. Raises RepositoryError for a segment the repository does not have or pg_waldump cannot decode,
        after feeding every event before it."""
        n = max(1, self.procs)
        spec = DumpSpec(str(self.bin_dir / "pg_waldump"), str(self.tmp), self.rmgrs, self.keep)
        decoder = self.decoder or partial(decode, run_as=self.run_as)
        pool, getter, drivers = self.executor(n), ThreadPoolExecutor(max(1, self.workers)), ThreadPoolExecutor(2 * n)
        try:
            self._run(plan_tasks(path, self.chunk), Merge(sink, len(path), on_progress), enough, window=2 * n,
                      start=lambda t, f: drivers.submit(_drive, t, f, lambda x: pool.submit(decoder, spec, x)),
                      getter=getter)
        finally:
            getter.shutdown(cancel_futures=True)
            pool.shutdown(cancel_futures=True)
            drivers.shutdown()
            for leftover in self.tmp.iterdir():
                leftover.unlink(missing_ok=True)

    def _run(self, tasks: list[Task], merge: Merge, enough: Callable[[], bool] | None, *, window: int,
             start: Callable[[Task, Fetched], Future[Decoded]], getter: Executor) -> None:
        """Tasks started in order, at most ``window`` at once (their segments fetched, then decoded), consumed in
        order; a task's segments are deleted once it is fed (its last one is the next task's)."""
        fetches: dict[Segment, Future[bool]] = {}
        running: deque[tuple[Task, Future[Decoded]]] = deque()
        todo = iter(tasks)

        def submit() -> None:
            task = next(todo, None)
            if task is not None:
                for s in task.segments():
                    if s not in fetches:
                        fetches[s] = getter.submit(self._fetch, s)
                running.append((task, start(task, [(s, fetches[s]) for s in task.segments()])))

        for _ in range(window):
            submit()
        while running:
            task, got = running.popleft()
            try:
                merge.feed(task, got.result())
            finally:
                for s in task.segments()[:-1] if task.stop is not None else task.segments():
                    fetches.pop(s, None)
                    (self.tmp / s.name).unlink(missing_ok=True)
            if enough is not None and enough():
                return
            submit()

    def _fetch(self, s: Segment) -> bool:
        """Fetched under another name, then renamed: a pg_waldump running meanwhile (it may open the segment after
        its range to finish the last record) finds the whole file or none, never one archive-get is still writing
        ('could not read file ...: read 0 of 8192')."""
        part = self.tmp / f".{s.name}.part"
        if not self.pgbr.archive_get(s.name, str(part)):
            part.unlink(missing_ok=True)
            return False
        part.rename(self.tmp / s.name)
        return True


def _drive(task: Task, fetched: Fetched, run: Callable[[Task], Future[Decoded]]) -> Decoded:
    """Wait for a task's segments, then decode it: up to the first segment the repository does not have."""
    for i, (s, f) in enumerate(fetched):
        if not f.result():
            missing = f"WAL segment {s.name} is not in the repository (expired, or never archived)"
            if i == 0:
                return Decoded([], None, missing)
            task = replace(task, last=s.segno - 1, stop=None, missing=missing)
            break
    return run(task).result()
