"""``opsd check``'s advice on the pgBackRest settings that decide speed and cost: warnings with the reason and,
where known, the effect measured on this project's benchmarks (docs/performance.md). Never failures: a slow
backup is a choice, a missing one is not.

``judge`` is pure (facts in, results out); ``facts`` reads pgbackrest.conf the way pgBackRest resolves it, and
the WAL rate from the repository's own backup records."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from opsd.adapters.pgbackrest import BackupInfo
from opsd.adapters.pgbackrest_conf import options
from opsd.context import Context
from opsd.core.records.checks import OK, WARNING, CheckResult
from opsd.core.units import human_bytes
from opsd.core.wal import SEGMENT_BYTES, parse_segment

OBJECT_STORES = ("s3", "gcs", "azure")
FAST_COMPRESS = ("zst", "lz4", "none")
# one archive-push process per segment, each with its own TLS connection to the object store, keeps up with a
# few segments a second at best; a day averaging a segment a minute has peaks well above that
HIGH_WAL_RATE = SEGMENT_BYTES / 60
_TRUE = ("y", "yes", "true", "1")


@dataclass(frozen=True)
class TuningFacts:
    repo_type: str
    bundle: bool
    process_max: int  # of the backup command
    compress_type: str
    archive_async: bool  # of archive-push
    start_fast: bool
    cores: int
    wal_rate: float | None  # bytes/s between the last two backups
    ready: int | None = None  # .ready segments waiting at this check


def _flag(v: str | None) -> bool:
    return (v or "n").strip().lower() in _TRUE


def wal_rate(backups: Sequence[BackupInfo]) -> float | None:
    """Bytes of WAL a second between the two newest backups' stop points (None: fewer than two)."""
    done = sorted((b for b in backups if not b.error and b.wal_stop), key=lambda b: b.stop)[-2:]
    if len(done) < 2:
        return None
    a, b = (parse_segment(x.wal_stop or "") for x in done)
    secs = (done[1].stop - done[0].stop).total_seconds()
    if a is None or b is None or secs <= 0 or b.segno < a.segno:
        return None
    return (b.segno - a.segno) * SEGMENT_BYTES / secs


def facts(ctx: Context, backups: Sequence[BackupInfo], ready: int | None) -> TuningFacts:
    pb = ctx.settings.pgbackrest
    keys = ("repo1-type", "repo1-bundle", "process-max", "compress-type", "start-fast")
    got = options(pb.config, pb.stanza, [*((k, "backup") for k in keys), ("archive-async", "archive-push")])
    return TuningFacts(
        repo_type=(got["repo1-type"] or "posix").lower(), bundle=_flag(got["repo1-bundle"]),
        process_max=int(got["process-max"] or 1), compress_type=(got["compress-type"] or "gz").lower(),
        archive_async=_flag(got["archive-async"]), start_fast=_flag(got["start-fast"]), cores=os.cpu_count() or 1,
        wal_rate=wal_rate(backups), ready=ready)


def judge(f: TuningFacts) -> list[CheckResult]:
    out = []
    if f.repo_type in OBJECT_STORES and not f.bundle:
        out.append(CheckResult("tuning.repo-bundle", WARNING, (
            f"repo1-bundle is off on an object store ({f.repo_type}): every file of the cluster is its own request "
            "(thousands of small files per backup, each a PUT and later a GET); repo1-bundle=y packs small files "
            "together: fewer requests, faster backups and restores, a smaller bill"), {"repo_type": f.repo_type}))
    if f.process_max <= 1 < f.cores:
        out.append(CheckResult("tuning.process-max", WARNING, (
            f"process-max is 1 on a host with {f.cores} cores: backup, restore and verify compress and copy one "
            f"file at a time; process-max={max(2, f.cores // 2)} in [global:backup] and [global:restore] uses "
            "half of them (the database keeps the rest)"), {"process_max": f.process_max, "cores": f.cores}))
    if f.compress_type not in FAST_COMPRESS:
        out.append(CheckResult("tuning.compress-type", WARNING, (
            f"compress-type={f.compress_type}: gzip is several times slower than zst at a similar ratio (lz4 is "
            "faster still, a little larger); compress-type=zst (existing backups stay readable)"),
            {"compress_type": f.compress_type}))
    if not f.archive_async and (f.wal_rate or 0) >= HIGH_WAL_RATE:
        rate = human_bytes(int(f.wal_rate or 0))
        out.append(CheckResult("tuning.archive-async", WARNING, (
            f"archive-async is off with {rate}/s of WAL between the last two backups: one archive-push process "
            "per segment, one at a time, falls behind at peaks (pg_wal grows); archive-async=y with a spool-path "
            "and process-max in [global:archive-push] pushes several at once"), {"wal_rate": f.wal_rate}))
    elif not f.archive_async and (f.ready or 0) > 10:
        out.append(CheckResult("tuning.archive-async", WARNING, (
            f"archive-async is off and {f.ready} WAL segments wait to be archived: archive-async=y with a "
            "spool-path and process-max in [global:archive-push] pushes several at once"), {"ready": f.ready}))
    if not f.start_fast:
        out.append(CheckResult("tuning.start-fast", WARNING, (
            "start-fast is off: a backup started with pgbackrest directly first waits for the next checkpoint "
            "(up to checkpoint_timeout); opsd's own backups pass --start-fast, set start-fast=y for the others"),
            {}))
    if not out:
        out.append(CheckResult("tuning", OK, f"pgBackRest settings: {f.compress_type} compression, process-max "
                                             f"{f.process_max}, bundling {'on' if f.bundle else 'off'}"))
    return out
