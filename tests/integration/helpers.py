"""Helpers for integration tests: read the repository directly with pgBackRest, poll with a deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run

T = TypeVar("T")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pgbackrest(sb: Sandbox, *args: str, conf: Path | None = None) -> str:
    res = run(as_pg(["pgbackrest", f"--config={conf or sb.pgbackrest_conf}", f"--stanza={sb.stanza}", *args]))
    return res.stdout


def repo_info(sb: Sandbox) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(pgbackrest(sb, "--output=json", "info"))
    return data[0]


def labels(sb: Sandbox) -> list[str]:
    return [b["label"] for b in repo_info(sb)["backup"]]


def archived_wal(sb: Sandbox) -> list[str]:
    """Every file under the stanza's WAL archive in the repository (segments, .backup, .history)."""
    out = pgbackrest(sb, "--output=json", "--recurse", "repo-ls", f"archive/{sb.stanza}")
    return sorted(k for k, v in json.loads(out).items() if v["type"] == "file")


def switch_and_wait(sb: Sandbox) -> str:
    """Switch WAL and wait until the segment just finished is in the repository; its name."""
    seg = sb.psql("select pg_walfile_name(pg_current_wal_lsn())")
    sb.psql("select pg_switch_wal()")
    wait_until(lambda: (repo_info(sb)["archive"][0]["max"] or "") >= seg, timeout=60, what=f"{seg} archived")
    return seg


def wait_until(pred: Callable[[], T], *, timeout: float, what: str, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def restore_and_count(sb: Sandbox, target: Path, port: int, sql: str) -> str:
    """Independent proof that a backup is usable: pgBackRest restore into a scratch dir (immediate target,
    archive_mode=off, its own port), start it, run ``sql``, stop it."""
    target.mkdir(mode=0o700)
    run(["chown", "postgres:postgres", str(target)])
    pgbackrest(sb, f"--pg1-path={target}", "--type=immediate", "--target-action=promote",
               f"--recovery-option=port={port}", "--recovery-option=archive_mode=off", "restore")
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(target), "-l", str(sb.root / "pglog" / f"{target.name}.log"), "-w"]
    run(as_pg([*pg_ctl, "-o", f"-c port={port} -c unix_socket_directories={sb.socket_dir}", "start"]))
    try:
        def promoted() -> bool:
            out = run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(port), "-XAtc",
                             "select pg_is_in_recovery()"]), check=False)
            return out.stdout.strip() == "f"

        wait_until(promoted, timeout=60, what="the restored copy to finish recovery")
        res = run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(port), "-XAtc", sql]))
        return res.stdout.strip()
    finally:
        run(as_pg([*pg_ctl, "-m", "immediate", "stop"]), check=False)


class Cluster:
    """A cluster of its own beside the session's primary (initdb layout, its own port, stanza, pgbackrest.conf,
    opsd config and state directory), for tests that rewrite or re-create their cluster: they never touch the
    shared primary, so they run in any order."""

    def __init__(self, sb: Sandbox, name: str) -> None:
        self.sb, self.name, self.port = sb, name, free_port()
        self.pgdata, self.state = sb.root / f"{name}-data", sb.root / f"{name}-state"
        self.pgbr = sb.write_pgbackrest_conf(path=sb.root / f"pgbackrest-{name}.conf", stanza=name,
                                             pg_path=self.pgdata, pg_port=self.port)
        mkdir_pg(self.state, 0o750)
        self.conf = self.write_conf(sb.root / f"opsd-{name}.toml")

    def write_conf(self, path: Path, **kw: Any) -> Path:
        """An opsd.toml aimed at this cluster; ``kw`` as Sandbox.opsd_toml (schedule, drill, extra, state_dir,
        stanza)."""
        kw.setdefault("state_dir", self.state)
        kw.setdefault("stanza", self.name)
        path.write_text(self.sb.opsd_toml(pgbackrest_conf=self.pgbr, data_dir=self.pgdata, pg_port=self.port, **kw))
        path.chmod(0o644)
        return path

    def initdb(self) -> None:
        mkdir_pg(self.pgdata, 0o700)
        run(as_pg([str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust"]))
        with (self.pgdata / "postgresql.conf").open("a") as f:
            f.write(f"port = {self.port}\nunix_socket_directories = '{self.sb.socket_dir}'\nlisten_addresses = ''\n"
                    "fsync = off\n")
        self.ctl("start")

    def ctl(self, action: str, *extra: str) -> None:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-l",
                   str(self.sb.root / "pglog" / f"{self.name}.log"), "-w", *extra, action]))

    def stop_quietly(self) -> None:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "immediate", "-w", "stop"]), check=False)

    def psql(self, sql: str) -> str:
        return run(as_pg([str(PG_BIN / "psql"), "-h", str(self.sb.socket_dir), "-p", str(self.port), "-XAtc",
                          sql])).stdout.strip()

    def pgbackrest(self, *args: str) -> str:
        return run(as_pg(["pgbackrest", f"--config={self.pgbr}", f"--stanza={self.name}", *args])).stdout

    def labels(self) -> list[str]:
        return [b["label"] for b in json.loads(self.pgbackrest("--output=json", "info"))[0]["backup"]]

    def archived_max(self) -> str:
        info = json.loads(self.pgbackrest("--output=json", "info"))[0]
        return max((a["max"] or "") for a in info["archive"])

    def switch_and_wait(self) -> None:
        seg = self.psql("select pg_walfile_name(pg_current_wal_lsn())")
        self.psql("select pg_switch_wal()")
        wait_until(lambda: self.archived_max() >= seg, timeout=60, what=f"{seg} archived")


def events(log: Path) -> list[dict[str, object]]:
    """The JSON log lines of a daemon or command (``--log-format json``); other lines skipped."""
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
