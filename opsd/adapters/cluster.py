"""The cluster on this host as the operating system sees it: where its configuration lives (Debian's
postgresql-common layout, a separate config directory, or the initdb layout inside PGDATA), how it is started,
and the facts that prove it is stopped. Facts only: the restore plan decides what they allow.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from opsd.adapters import processes
from opsd.adapters.runner import Runner

ETC_ROOT = Path("/etc/postgresql")  # postgresql-common: /etc/postgresql/<major>/<cluster>/postgresql.conf
_DATA_DIRECTORY = re.compile(r"^\s*data_directory\s*=\s*'((?:[^']|'')*)'", re.MULTILINE)


@dataclass(frozen=True)
class Layout:
    """``kind``: ``debian`` (postgresql-common; started with pg_ctlcluster), ``config_dir`` (postgresql.conf in
    its own directory, which names the data directory; started with ``pg_ctl -D <config_dir>``) or ``pgdata``
    (initdb's layout: configuration inside the data directory)."""

    kind: str
    config_dir: Path
    major: str | None = None
    cluster: str | None = None

    @property
    def config_file(self) -> Path:
        return self.config_dir / "postgresql.conf"

    def describe(self) -> str:
        if self.kind == "debian":
            return (f"Debian/Ubuntu (postgresql-common): cluster {self.major}/{self.cluster}, config "
                    f"{self.config_dir}, started with 'pg_ctlcluster {self.major} {self.cluster} start'")
        if self.kind == "config_dir":
            return f"configuration in {self.config_dir} (outside the data directory), started with pg_ctl -D"
        return f"configuration inside the data directory ({self.config_dir}), started with pg_ctl -D"


def data_directory_of(conf: Path) -> Path | None:
    """The ``data_directory`` a postgresql.conf names (the last setting wins), or None."""
    try:
        found = _DATA_DIRECTORY.findall(conf.read_text(errors="replace"))
    except OSError:
        return None
    return Path(found[-1].replace("''", "'")) if found else None


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _debian_names(config_dir: Path, etc_root: Path) -> tuple[str, str] | None:
    try:
        rel = config_dir.relative_to(etc_root)
    except ValueError:
        return None
    return (rel.parts[0], rel.parts[1]) if len(rel.parts) == 2 else None


def detect_layout(data_dir: Path, config_dir: Path | None = None, etc_root: Path = ETC_ROOT) -> Layout:
    """From ``[postgres] config_dir`` when set, else from postgresql-common's config files whose
    ``data_directory`` is ``data_dir``, else the initdb layout."""
    if config_dir is not None:
        names = _debian_names(config_dir, etc_root)
        if names is not None:
            return Layout("debian", config_dir, names[0], names[1])
        return Layout("config_dir", config_dir)
    for conf in sorted(etc_root.glob("*/*/postgresql.conf")):
        named = data_directory_of(conf)
        if named is not None and _same(named, data_dir):
            major, cluster = conf.parent.parent.name, conf.parent.name
            return Layout("debian", conf.parent, major, cluster)
    return Layout("pgdata", data_dir)


def layout_problems(layout: Layout, data_dir: Path) -> list[str]:
    """What is wrong with an explicitly configured config_dir (empty: fine)."""
    if layout.kind == "pgdata":
        return []
    if not layout.config_file.is_file():
        return [f"postgres.config_dir: no postgresql.conf in {layout.config_dir}"]
    named = data_directory_of(layout.config_file)
    if named is None or not _same(named, data_dir):
        return [f"postgres.config_dir: {layout.config_file} names data_directory {named or '(none)'}, "
                f"not postgres.data_dir {data_dir}"]
    return []


# --------------------------------------------------------------------------- proof of "stopped"
@dataclass(frozen=True)
class StopEvidence:
    """What opsd saw of a cluster before touching its data directory."""

    pg_ctl_status: int | None  # pg_ctl status exit code: 0 running, 3 not running, 4 no data directory
    pid_file_pid: int | None  # the pid in postmaster.pid, if the file exists
    pid_alive: bool  # that pid is a live (non-zombie) process
    answering: str | None  # "socket /var/run/postgresql/.s.PGSQL.5432" / "127.0.0.1:5432" when something answers
    control_state: str | None  # pg_controldata "Database cluster state"


CLEAN_STATES = ("shut down", "shut down in recovery")


def answering(port: int, socket_dir: Path | None) -> str | None:
    """Something accepts connections on the cluster's Unix socket or its TCP port (a stale socket file alone does
    not count: connect() is refused)."""
    if socket_dir is not None:
        path = socket_dir / f".s.PGSQL.{port}"
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1.0)
            try:
                s.connect(str(path))
                return f"socket {path}"
            except OSError:
                pass
    with socket.socket() as s:
        s.settimeout(1.0)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return f"127.0.0.1:{port}"
    return None


def control_state(runner: Runner, bin_dir: Path, data_dir: Path) -> str | None:
    res = runner.run([str(bin_dir / "pg_controldata"), str(data_dir)], timeout=30, env={"LC_ALL": "C"},
                     log_output=False)
    if not res.ok:
        return None
    for line in res.stdout.splitlines():
        if line.startswith("Database cluster state:"):
            return line.split(":", 1)[1].strip()
    return None


def stop_evidence(runner: Runner, bin_dir: Path, data_dir: Path, port: int, socket_dir: Path | None
                  ) -> StopEvidence:
    status = runner.run([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "status"], timeout=30, log_output=False)
    pid = processes.pid_in_file(data_dir)
    return StopEvidence(
        pg_ctl_status=status.returncode, pid_file_pid=pid, pid_alive=pid is not None and processes.alive(pid),
        answering=answering(port, socket_dir), control_state=control_state(runner, bin_dir, data_dir),
    )


# --------------------------------------------------------------------------- starting it the way it runs
def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def start_argv(layout: Layout, bin_dir: Path, data_dir: Path, log_file: Path, timeout: int) -> list[str]:
    """How the cluster normally starts. pg_ctlcluster itself hands the start to systemd
    (``postgresql@<major>-<cluster>``) when systemd runs and opsd is root, and runs pg_ctl otherwise."""
    if layout.kind == "debian":
        return ["pg_ctlcluster", str(layout.major), str(layout.cluster), "start"]
    target = layout.config_dir if layout.kind == "config_dir" else data_dir
    return [str(bin_dir / "pg_ctl"), "-D", str(target), "-l", str(log_file), "-w", "-t", str(timeout), "start"]


def debian_log_file(layout: Layout) -> Path | None:
    if layout.kind != "debian":
        return None
    return Path(f"/var/log/postgresql/postgresql-{layout.major}-{layout.cluster}.log")

