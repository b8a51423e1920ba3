"""A real Patroni cluster for the sandbox and the HA tests: one etcd (Debian's ``etcd-server``), and PostgreSQL 15
nodes managed by Patroni from PyPI (installed by ``scripts/bootstrap`` in ``/opt/opsd-patroni``, a venv the
``postgres`` user can run), all on this machine. Every node archives to the sandbox's S3 repository under one
stanza through a pgbackrest.conf of its own (pg1 = that node, as on real hosts where the paths are the same), and
has an opsd.toml and state directory of its own that differ only in those paths and ``[patroni] url``.

Layout under ``<sandbox>/ha-<scope>/``: ``etcd/`` (data + log), ``<node>/`` (patroni.yml, patroni.log, data/,
state/, opsd.toml), ``pgbackrest-<node>.conf`` beside the sandbox's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, port_open, run, stop_process, wait_for
from opsd_sandbox.stack import PG_BIN, Sandbox

PATRONI_VENV = Path(os.environ.get("OPSD_PATRONI_VENV", "/opt/opsd-patroni"))
ETCD = "/usr/bin/etcd"


def available() -> str:
    """'' when Patroni and etcd are installed, else what is missing (the HA tests say so instead of failing)."""
    missing = [str(p) for p in (PATRONI_VENV / "bin" / "patroni", Path(ETCD)) if not p.exists()]
    return f"missing {', '.join(missing)} (run scripts/bootstrap)" if missing else ""


@dataclass
class Node:
    name: str
    home: Path
    port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pgdata(self) -> Path:
        return self.home / "data"

    @property
    def state(self) -> Path:
        return self.home / "state"

    @property
    def conf(self) -> Path:
        return self.home / "opsd.toml"

    @property
    def yml(self) -> Path:
        return self.home / "patroni.yml"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def patroni(self) -> dict[str, object]:
        """Patroni's own answer for this node (GET /patroni), or {} when its REST API does not answer."""
        try:
            with urllib.request.urlopen(f"{self.api}/patroni", timeout=2) as r:  # noqa: S310 (loopback)
                return dict(json.loads(r.read()))
        except (OSError, ValueError):
            return {}


@dataclass
class HaCluster:
    sb: Sandbox
    scope: str = "ha"
    size: int = 2
    ignore_slots: tuple[str, ...] = ()  # slots of other consumers, which Patroni must not drop
    etcd_relays: bool = False  # each node reaches etcd through a relay of its own (isolate() cuts one node off)
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)
    relays: dict[str, Relay] = field(default_factory=dict)
    _etcd: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.sb.root / f"ha-{self.scope}"

    @property
    def stanza(self) -> str:
        return self.scope

    def pgbackrest_conf(self, node: Node) -> Path:
        return self.sb.root / f"pgbackrest-{self.scope}-{node.name}.conf"

    # ------------------------------------------------------------------ lifecycle
    def up(self, *, opsd_extra: str = "") -> HaCluster:
        """etcd, then the first node (it bootstraps and leads), then the others as streaming replicas."""
        try:
            self._start_etcd()
            self.nodes = [Node(f"node{i + 1}", mkdir_pg(self.home / f"node{i + 1}", 0o755)) for i in range(self.size)]
            for node in self.nodes:
                self._configure(node, opsd_extra)
            self.start(self.nodes[0])
            wait_for(lambda: self.leader() is self.nodes[0], timeout=90, what="the first node to lead")
            for node in self.nodes[1:]:
                self.start(node)
            self.wait_streaming()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        for node in self.nodes:
            self.stop(node)
        stop_process(self._etcd)
        self._etcd = None
        for relay in self.relays.values():
            relay.close()

    def isolate(self, node: Node, cut: bool = True) -> None:
        """Cut ``node`` off from etcd (its relay drops every connection and refuses new ones), or reconnect it."""
        self.relays[node.name].cut = cut
        if cut:
            self.relays[node.name].drop()

    def stop_etcd(self) -> None:
        """The DCS lost: etcd stops (SIGTERM), its data kept for :meth:`start_etcd`."""
        stop_process(self._etcd)
        self._etcd = None

    def start_etcd(self) -> None:
        self._start_etcd()

    def _start_etcd(self) -> None:
        d = mkdir_pg(self.home / "etcd", 0o700)
        peer, client = f"http://127.0.0.1:{self.etcd_peer_port}", f"http://127.0.0.1:{self.etcd_port}"
        self._etcd = subprocess.Popen(
            [ETCD, "--name", "opsd", "--data-dir", str(d / "data"), "--listen-client-urls", client,
             "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"opsd={peer}", "--initial-cluster-state", "new"],
            stdout=(d / "etcd.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: port_open(self.etcd_port), timeout=30, what=f"etcd on port {self.etcd_port}")

    def _configure(self, node: Node, opsd_extra: str) -> None:
        mkdir_pg(node.state, 0o750)
        pgbr = self.sb.write_pgbackrest_conf(path=self.pgbackrest_conf(node), stanza=self.stanza,
                                             pg_path=node.pgdata, pg_port=node.port)
        node.yml.write_text(json.dumps(self._patroni_yml(node, pgbr), indent=1))  # JSON is YAML
        node.yml.chmod(0o600)
        with contextlib.suppress(PermissionError):
            os.chown(node.yml, *_pg_ids())
        node.conf.write_text(self.sb.opsd_toml(
            pgbackrest_conf=pgbr, stanza=self.stanza, data_dir=node.pgdata, pg_port=node.port, state_dir=node.state,
            extra=f'\n[patroni]\nurl = "{node.api}"\ncheck_every = "2s"\n' + opsd_extra))
        node.conf.chmod(0o644)

    def _etcd_port_for(self, node: Node) -> int:
        if not self.etcd_relays:
            return self.etcd_port
        if node.name not in self.relays:
            self.relays[node.name] = Relay(self.etcd_port)
        return self.relays[node.name].port

    def _patroni_yml(self, node: Node, pgbr: Path) -> dict[str, object]:
        archive = f"pgbackrest --config={pgbr} --stanza={self.stanza}"
        trust = ["local all all trust", "host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"]
        return {
            "scope": self.scope, "namespace": "/opsd/", "name": node.name,
            "log": {"level": "INFO", "dir": str(node.home), "file_num": 1},
            "restapi": {"listen": f"127.0.0.1:{node.api_port}", "connect_address": f"127.0.0.1:{node.api_port}"},
            "etcd3": {"hosts": [f"127.0.0.1:{self._etcd_port_for(node)}"],
                      "use_proxies": self.etcd_relays},  # with relays: never etcd's own advertised client URLs
            "bootstrap": {
                "dcs": {"ttl": 20, "loop_wait": 2, "retry_timeout": 5, "maximum_lag_on_failover": 64 * 1024 * 1024,
                        "ignore_slots": [{"name": n, "type": "physical"} for n in self.ignore_slots],
                        "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": {
                            "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                            "max_wal_senders": 10, "max_replication_slots": 10, "archive_mode": "on",
                            "archive_timeout": "0", "max_connections": 100, "fsync": "off"}}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.port}", "connect_address": f"127.0.0.1:{node.port}",
                "data_dir": str(node.pgdata), "bin_dir": str(PG_BIN), "pgpass": str(node.home / "pgpass"),
                "authentication": {"superuser": {"username": "postgres", "password": "sandbox"},
                                   "replication": {"username": "postgres", "password": "sandbox"},
                                   "rewind": {"username": "postgres", "password": "sandbox"}},
                "parameters": {"unix_socket_directories": str(self.sb.socket_dir), "shared_buffers": "32MB",
                               "archive_command": f"{archive} archive-push %p", "logging_collector": "off"},
                "recovery_conf": {"restore_command": f"{archive} archive-get %f \"%p\""},
                "pg_hba": trust,
            },
        }

    def start(self, node: Node) -> None:
        """Start Patroni on ``node`` (it starts, follows or rewinds PostgreSQL by itself)."""
        log = (node.home / "patroni.out").open("ab")
        env = {**os.environ, "PATH": f"{PATRONI_VENV / 'bin'}:{os.environ.get('PATH', '')}"}
        node.proc = subprocess.Popen(as_pg([str(PATRONI_VENV / "bin" / "patroni"), str(node.yml)]), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        wait_for(lambda: bool(node.patroni()), timeout=60, what=f"Patroni's REST API on {node.name}")

    def stop(self, node: Node) -> None:
        """Stop Patroni the way systemd does (it stops PostgreSQL first)."""
        stop_process(node.proc, timeout=60)
        node.proc = None
        self._stop_postgres(node)

    def kill(self, node: Node) -> None:
        """A lost host: Patroni and the postmaster die at once (SIGKILL); the leader key expires after ttl."""
        if node.proc is not None and node.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait(timeout=10)
        node.proc = None
        pid = self._postmaster_pid(node)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not _alive(pid), timeout=30, what=f"{node.name}'s postmaster to die")

    def _postmaster_pid(self, node: Node) -> int:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((node.pgdata / "postmaster.pid").read_text().split()[0])
        return 0

    def _stop_postgres(self, node: Node) -> None:
        if self._postmaster_pid(node) and _alive(self._postmaster_pid(node)):
            run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(node.pgdata), "-m", "immediate", "-w", "stop"]),
                check=False)

    # ------------------------------------------------------------------ state and actions
    def leader(self) -> Node | None:
        for node in self.nodes:
            if node.patroni().get("role") in ("primary", "master") and node.patroni().get("state") == "running":
                return node
        return None

    def replicas(self) -> list[Node]:
        return [n for n in self.nodes if n.patroni().get("role") == "replica"]

    def wait_leader(self, node: Node | None = None, timeout: float = 120) -> Node:
        wait_for(lambda: self.leader() is not None and (node is None or self.leader() is node), timeout=timeout,
                 what=f"{node.name if node else 'a node'} to lead", interval=0.5)
        leader = self.leader()
        assert leader is not None
        return leader

    def wait_streaming(self, timeout: float = 120) -> None:
        """Every running node but the leader streams from it."""
        def ok() -> bool:
            leader = self.leader()
            others = [n for n in self.nodes if n is not leader and n.proc is not None]
            return leader is not None and all(n.patroni().get("replication_state") == "streaming"
                                              or self._streams(leader, n) for n in others)
        wait_for(ok, timeout=timeout, what="the replicas to stream", interval=0.5)

    def _streams(self, leader: Node, node: Node) -> bool:
        out = self.psql(leader, "select count(*) from pg_stat_replication where application_name = "
                                f"'{node.name}' and state = 'streaming'", check=False)
        return out == "1"

    def switchover(self, to: Node) -> None:
        leader = self.wait_leader()
        run([str(PATRONI_VENV / "bin" / "patronictl"), "-c", str(leader.yml), "switchover", "--force",
             "--leader", leader.name, "--candidate", to.name, self.scope], timeout=120)
        self.wait_leader(to)

    def maintenance(self, on: bool) -> None:
        """Patroni's maintenance mode (``patronictl pause``): it stops managing the nodes, and so stops resuming a
        standby's paused WAL replay, as it otherwise does on PostgreSQL 14+."""
        leader = self.wait_leader()
        run([str(PATRONI_VENV / "bin" / "patronictl"), "-c", str(leader.yml), "pause" if on else "resume", "--wait",
             self.scope], timeout=120)

    def psql(self, node: Node, sql: str, *, check: bool = True) -> str:
        res = run(as_pg([str(PG_BIN / "psql"), "-h", str(self.sb.socket_dir), "-p", str(node.port), "-XAtc", sql]),
                  check=check)
        return res.stdout.strip()

    def pgbackrest(self, node: Node, *args: str) -> str:
        return run(as_pg(["pgbackrest", f"--config={self.pgbackrest_conf(node)}", f"--stanza={self.stanza}",
                          *args]), timeout=600).stdout

    def start_lone(self, node: Node) -> None:
        """Start ``node``'s PostgreSQL by hand, without Patroni and as a primary: an old leader brought back
        without a rewind (the split-brain the guard must see)."""
        for sig in ("standby.signal", "recovery.signal"):
            (node.pgdata / sig).unlink(missing_ok=True)
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(node.pgdata), "-l", str(node.home / "lone.log"), "-w",
                   "-t", "60", "start"]))


class Relay:
    """A TCP relay to ``upstream`` on 127.0.0.1, run in threads of this process; ``cut``: every connection through
    it is dropped and new ones are refused (closed at once), as a network partition would."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.cut = False
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._srv.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True, name=f"relay-{self.port}").start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            if self.cut:
                conn.close()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._conns += [conn, up]
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def drop(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def close(self) -> None:
        self.cut = True
        self._srv.close()
        self.drop()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        src.settimeout(None)
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pg_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid

