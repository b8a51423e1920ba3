"""What a copy of production starts with (pure): no logical replication workers, no preloaded library outside
the allow-list, no standby connection, no archiving, no shell command from production's config, a Unix socket
in a private directory and nothing else."""

from __future__ import annotations

import re
from collections.abc import Sequence

# pg_ctl -o goes through a shell: '' is an empty value. max_worker_processes stays production's (hot-standby
# recovery refuses less than the primary had); no worker can be registered without a preloaded library, and the
# logical replication launcher is not started at all with max_logical_replication_workers = 0.
QUARANTINE = (
    "-c listen_addresses=''", "-c max_logical_replication_workers=0", "-c max_sync_workers_per_subscription=0",
    "-c primary_conninfo=''", "-c primary_slot_name=''", "-c archive_mode=off", "-c archive_command=''",
    "-c archive_cleanup_command=''", "-c recovery_end_command=''", "-c session_preload_libraries=''",
    "-c local_preload_libraries=''", "-c autovacuum=off", "-c ssl=off",
)
_LIBRARY = re.compile(r"^[A-Za-z0-9_.$/-]+$")


def parse_libraries(value: str) -> list[str]:
    """``shared_preload_libraries`` as postgres -C prints it (comma separated, maybe double-quoted)."""
    return [part.strip().strip('"') for part in value.split(",") if part.strip().strip('"')]


def preload(production: Sequence[str], allow: Sequence[str]) -> tuple[list[str], list[str]]:
    """The libraries the copy loads (production's that the allow-list names, by library name with or without a
    directory or suffix), and those it drops."""
    allowed = {a.rsplit("/", 1)[-1].removesuffix(".so") for a in allow}
    kept: list[str] = []
    dropped: list[str] = []
    for lib in production:
        name = lib.rsplit("/", 1)[-1].removesuffix(".so")
        (kept if name in allowed and _LIBRARY.match(lib) else dropped).append(lib)
    return kept, dropped


def server_options(kept: Sequence[str]) -> tuple[str, ...]:
    libs = ",".join(kept)
    return (*QUARANTINE, f"-c shared_preload_libraries='{libs}'")


LOW_PRIORITY = ("nice", "-n", "10", "ionice", "-c", "3")  # beside production: CPU nice 10, IO idle
