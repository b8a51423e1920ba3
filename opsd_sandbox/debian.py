"""A cluster in Debian's layout (postgresql-common), the way most of opsd's users run PostgreSQL:
``pg_createcluster 15 NAME`` puts its config in ``/etc/postgresql/15/NAME/`` and its data in
``/var/lib/postgresql/15/NAME``, its socket in ``/var/run/postgresql``, and keeps the package's default
``pg_hba.conf`` (``peer`` for local connections). It shares the sandbox's S3 repository under a stanza of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run
from opsd_sandbox.stack import PG_BIN, Sandbox

SOCKET_DIR = Path("/var/run/postgresql")


@dataclass
class DebianCluster:
    sb: Sandbox
    name: str = field(default_factory=lambda: f"opsd{os.getpid()}")
    port: int = field(default_factory=free_port)
    major: str = "15"

    @property
    def stanza(self) -> str:
        return f"deb-{self.name}"

    @property
    def config_dir(self) -> Path:
        return Path("/etc/postgresql") / self.major / self.name

    @property
    def data_dir(self) -> Path:
        return Path("/var/lib/postgresql") / self.major / self.name

    @property
    def pgbackrest_conf(self) -> Path:
        return self.sb.root / f"pgbackrest-{self.name}.conf"

    @property
    def opsd_conf(self) -> Path:
        return self.sb.root / f"opsd-{self.name}.toml"

    @property
    def state_dir(self) -> Path:
        return self.sb.root / f"state-{self.name}"

    def create(self) -> DebianCluster:
        SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        mkdir_pg(SOCKET_DIR, 0o2775)
        run(["pg_createcluster", self.major, self.name, "-p", str(self.port), "--", "--data-checksums"])
        with (self.config_dir / "conf.d" / "opsd-sandbox.conf").open("w") as f:
            f.write("fsync = off\nmax_wal_senders = 5\nshared_buffers = 64MB\n")
        self.ctl("start")
        mkdir_pg(self.state_dir, 0o750)
        self.sb.write_pgbackrest_conf(path=self.pgbackrest_conf, stanza=self.stanza, pg_path=self.data_dir,
                                      pg_port=self.port, socket_dir=SOCKET_DIR)
        self.write_opsd_conf()
        return self

    def write_opsd_conf(self, path: Path | None = None, *, data_dir: Path | None = None, port: int | None = None,
                        pgbackrest_conf: Path | None = None, state_dir: Path | None = None) -> Path:
        """This cluster's opsd.toml: no config_dir (opsd detects the layout), peer authentication."""
        text = self.sb.opsd_toml(pgbackrest_conf=pgbackrest_conf or self.pgbackrest_conf, stanza=self.stanza,
                                 data_dir=data_dir or self.data_dir, pg_port=port or self.port, host=SOCKET_DIR,
                                 state_dir=state_dir or self.state_dir)
        target = path or self.opsd_conf
        target.write_text(text)
        target.chmod(0o644)
        return target

    def ctl(self, action: str) -> None:
        run(["pg_ctlcluster", self.major, self.name, action])

    def status(self) -> str:
        """'online' or 'down', from pg_lsclusters."""
        out = run(["pg_lsclusters", "--no-header", self.major, self.name]).stdout.split()
        return out[3] if len(out) > 3 else "?"

    def psql(self, sql: str, *, port: int | None = None, db: str = "postgres") -> str:
        """As the postgres OS user over the socket: Debian's peer rule lets it in."""
        res = run(as_pg([str(PG_BIN / "psql"), "-h", str(SOCKET_DIR), "-p", str(port or self.port), "-d", db, "-X",
                         "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]))
        return res.stdout.strip()

    def drop(self) -> None:
        run(["pg_dropcluster", "--stop", self.major, self.name], check=False)
