"""PostgreSQL server control (pg_ctl), through the runner so it runs as ``run_as``."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from opsd.adapters.runner import Runner
from opsd.errors import CommandError
from opsd.settings import PostgresSection


def restart_argv(pg: PostgresSection, log_file: Path) -> list[str]:
    """The DBA's restart_command if set, else pg_ctl (server output to ``log_file`` unless the server
    has its own logging_collector)."""
    if pg.restart_command.strip():
        return shlex.split(pg.restart_command)
    return [str(pg.bin_dir / "pg_ctl"), "-D", str(pg.data_dir), "-l", str(log_file), "-m", "fast", "-w", "-t", "300",
            "restart"]


@dataclass
class PgCtl:
    pg: PostgresSection
    runner: Runner
    log_file: Path

    def restart(self) -> None:
        argv = restart_argv(self.pg, self.log_file)
        res = self.runner.run(argv, timeout=360, log_output=True)
        if not res.ok:
            last = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
            raise CommandError(f"restarting PostgreSQL failed (rc {res.returncode}): {last}", argv=res.argv,
                               returncode=res.returncode, stderr=res.stderr,
                               hint="set [postgres] restart_command, e.g. 'pg_ctlcluster 15 main restart'")
