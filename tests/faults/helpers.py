"""Helpers for fault tests: find processes, read WAL waiting to be archived, wait for the archive to drain."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from opsd.adapters.pgbackrest import parse_repo_ls
from opsd.core.wal import parse_segment, runs_and_gaps
from opsd_sandbox import Sandbox
from tests.conftest import REPO
from tests.integration.helpers import pgbackrest, wait_until


def pids(pattern: str) -> list[int]:
    res = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split()]


def ready_count(sb: Sandbox) -> int:
    return int(sb.psql("select count(*) from pg_ls_archive_statusdir() where name like '%.ready'"))


def wait_drained(sb: Sandbox, timeout: float = 150) -> None:
    """Wait until nothing waits to be archived. After failures the archiver sleeps up to a minute; a new
    segment (a write and a switch) wakes it, so poke it every few seconds while waiting."""
    sb.psql("create table if not exists fault_poke(x int)")
    last = [0.0]

    def drained() -> bool:
        if ready_count(sb) == 0:
            return True
        if time.monotonic() - last[0] > 3:
            sb.psql("insert into fault_poke values (1); select pg_switch_wal()")
            last[0] = time.monotonic()
        return False

    wait_until(drained, timeout=timeout, what="the archive backlog to drain", interval=0.5)


def archive_gaps(sb: Sandbox) -> list[str]:
    text = pgbackrest(sb, "--output=json", "--recurse", "repo-ls", f"archive/{sb.stanza}")
    _runs, gaps = runs_and_gaps(parse_repo_ls(text))
    return [f"{g.missing_from.name}..{g.missing_to.name}" for g in gaps]


def archived(sb: Sandbox, segment: str) -> bool:
    text = pgbackrest(sb, "--output=json", "--recurse", "repo-ls", f"archive/{sb.stanza}")
    seg = parse_segment(segment)
    return any(a.segment == seg for a in parse_repo_ls(text))


def start_backup(conf: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "backup", "--type", "full"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_copying(log: Path, conf: Path) -> subprocess.Popen[str]:
    """A backup started and already copying files (pgBackRest's ``log`` says so): the moment to inject a fault."""
    seen = log.stat().st_size if log.exists() else 0
    proc = start_backup(conf)
    wait_until(lambda: "backup file " in log.read_text()[seen:] if log.exists() else False, timeout=60,
               what="pgbackrest to copy files", interval=0.1)
    return proc
