"""PostgreSQL server control (pg_ctl), through the runner so it runs as ``run_as``."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from opsd.adapters.cluster import Layout
from opsd.adapters.runner import Runner
from opsd.errors import CommandError
from opsd.settings import PostgresSection


def restart_argv(pg: PostgresSection, layout: Layout, log_file: Path) -> list[str]:
    """The DBA's restart_command if set, else the way the layout runs the cluster: pg_ctlcluster on Debian (it
    hands over to systemd when that runs), pg_ctl elsewhere (server output to ``log_file`` unless the server
    has its own logging_collector)."""
    if pg.restart_command.strip():
        return shlex.split(pg.restart_command)
    if layout.kind == "debian":
        return ["pg_ctlcluster", str(layout.major), str(layout.cluster), "restart"]
    return [str(pg.bin_dir / "pg_ctl"), "-D", str(pg.data_dir), "-l", str(log_file), "-m", "fast", "-w", "-t", "300",
            "restart"]


@dataclass
class PgCtl:
    pg: PostgresSection
    layout: Layout
    runner: Runner
    log_file: Path

    def restart(self) -> None:
        argv = restart_argv(self.pg, self.layout, self.log_file)
        # pg_ctlcluster run by root goes through systemd's unit (or drops to the cluster owner) by itself
        as_root = argv[0] == "pg_ctlcluster" and os.geteuid() == 0
        res = self.runner.run(argv, timeout=360, log_output=True, as_user=not as_root)
        if not res.ok:
            last = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
            raise CommandError(f"restarting PostgreSQL failed (rc {res.returncode}): {last}", argv=res.argv,
                               returncode=res.returncode, stderr=res.stderr,
                               hint="set [postgres] restart_command, e.g. 'pg_ctlcluster 15 main restart'")


@dataclass
class Instance:
    """A (scratch or restored) PostgreSQL instance controlled with pg_ctl as ``run_as``."""

    bin_dir: Path
    data_dir: Path
    runner: Runner

    def running(self) -> bool:
        res = self.runner.run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"], timeout=30,
                              log_output=False)
        return res.returncode == 0

    def start(self, log_file: Path, options: list[str], timeout: float = 600, prefix: tuple[str, ...] = ()) -> None:
        """``prefix``: what pg_ctl (and so the postmaster and every backend) runs under, e.g. nice and ionice."""
        opts = " ".join(options)
        res = self.runner.run([*prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(log_file),
                               "-w", "-t", str(int(timeout)), "-o", opts, "start"], timeout=timeout + 30)
        if not res.ok:
            raise CommandError(f"PostgreSQL in {self.data_dir} did not start: {tail_fatal(log_file)}", argv=res.argv,
                               returncode=res.returncode, hint=f"see {log_file}")

    def stop(self, mode: str = "fast") -> None:
        self.runner.run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
                        timeout=120)


def tail_fatal(log_file: Path) -> str:
    try:
        lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if "FATAL" in ln or "PANIC" in ln]
    except OSError:
        return "no log"
    return lines[-1].split("FATAL:", 1)[-1].strip() if lines else "no FATAL line in the log"
