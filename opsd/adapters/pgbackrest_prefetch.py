"""The restore_command of a restored copy that fetches WAL ahead of replay (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from opsd.adapters.pgbackrest import Base
from opsd.core.shell import plain_word


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
    argv = [*base.argv(), f"--pg1-path={pg1_path}", "--archive-async", f"--spool-path={p.spool_path}",
            f"--archive-get-queue-max={p.queue_max}", f"--process-max={p.process_max}"]
    if lock_path:
        argv.append(f"--lock-path={lock_path}")
    # pgBackRest writes the command into postgresql.auto.conf between quotes it does not escape, and PostgreSQL
    # runs it through /bin/sh: no quoting survives both, so a value that is not a plain word is refused
    return " ".join(plain_word("a path in restore_command", a) for a in argv) + ' archive-get %f "%p"'
