"""The restore_command of a restored copy that fetches WAL ahead of replay (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from opsd.adapters.pgbackrest import Base


@dataclass(frozen=True)
class Prefetch:
    """Asynchronous archive-get for a restored copy: pgBackRest fetches WAL ahead of replay into a spool
    directory private to this restore (never production's), ``process_max`` segments at a time, up to
    ``queue_max`` bytes ahead."""

    spool_path: str
    queue_max: int
    process_max: int


def archive_get_command(base: Base, pg1_path: str, lock_path: str | None, p: Prefetch) -> str:
    """The restore_command of a copy that prefetches: what pgBackRest would write itself (config, stanza, paths)
    plus the asynchronous options, which ``restore`` does not accept on its own command line."""
    if p.queue_max < 16 * 1024 * 1024 or p.process_max < 1:
        raise ValueError("a prefetch queue holds at least one segment (16 MiB) and one process")
    for value in (base.config, pg1_path, p.spool_path, lock_path or ""):
        if any(c in value for c in "'\\\"%\n "):
            raise ValueError(f"a path in restore_command cannot hold quotes, %, spaces or newlines: {value!r}")
    argv = [*base.argv(), f"--pg1-path={pg1_path}", "--archive-async", f"--spool-path={p.spool_path}",
            f"--archive-get-queue-max={p.queue_max}", f"--process-max={p.process_max}"]
    if lock_path:
        argv.append(f"--lock-path={lock_path}")
    return " ".join(argv) + ' archive-get %f "%p"'
