"""A backup fleet on a network of its own: four test hosts in network namespaces on one LAN (:mod:`opsd_sandbox.net`),
each reaching the others only over its veth link, so that a link can be cut or made slow.

    s3       moto (plain HTTP on the host's own loopback) + nginx terminating TLS on <s3>:9443
    primary  PostgreSQL 15 listening on its LAN address, archiving to S3 over the LAN; opsd runs here
    standby  a streaming standby made with pg_basebackup -R over the LAN, and pgBackRest's TLS server
             (for backups copied from the standby: pg2-host-type=tls, client certificate checked by CN)
    drill    an opsd with role = "drill": its own state, scratch, log/lock/spool, restoring from S3

Names: pgBackRest 2.45 matches only DNS names in a certificate, so hosts reach S3 as ``s3.opsd.test`` and the
standby's TLS server as ``standby.opsd.test``. Processes in a namespace share this machine's filesystem and so its
/etc/hosts; ``ip netns exec`` bind-mounts ``/etc/netns/<netns>/hosts`` over /etc/hosts for what it starts (and
their children: PostgreSQL's archive_command, a drill's scratch instance), which is where the names live. The
filesystem is shared, so unix sockets are too: the test (in this machine's namespace) reaches each PostgreSQL
through its socket directory, and the TCP traffic that matters (S3, replication, the TLS server) crosses the LAN.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opsd_sandbox.flaky import nginx_conf
from opsd_sandbox.net import Lan, Node
from opsd_sandbox.procs import as_pg, chown_pg, free_port, mkdir_pg, run, stop_process, stop_strays, wait_for
from opsd_sandbox.stack import BUCKET, PG_BIN, REGION, S3_KEY, S3_NAME, S3_SECRET, Sandbox

TLS_PORT, MOTO_PORT, PGBR_TLS_PORT = 9443, 9000, 8432  # on the hosts' own addresses: no clash in namespaces
STANDBY_NAME = "standby.opsd.test"
CLIENT_CN = "opsd-client"
# short pgBackRest timeouts: a cut link is found out in seconds, not the default minutes (io 60 s, protocol 30 min)
PGBR_TIMEOUTS = {"io-timeout": "2", "db-timeout": "5", "protocol-timeout": "6", "job-retry": "0"}


@dataclass
class NetStack:
    """The four hosts and their processes; ``sb`` is the primary's sandbox (its pgdata, socket, port, configs),
    brought up here host by host instead of by :meth:`Sandbox.up`."""

    lan: Lan
    sb: Sandbox = field(default_factory=lambda: Sandbox(Path(tempfile.mkdtemp(prefix="opsd-net-", dir="/tmp")),
                                                        stanza="net", s3_port=MOTO_PORT, tls_port=TLS_PORT))
    nodes: dict[str, Node] = field(default_factory=dict)
    standby_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # ------------------------------------------------------------------ paths
    @property
    def root(self) -> Path:
        return self.sb.root

    @property
    def standby_data(self) -> Path:
        return self.root / "standby-data"

    @property
    def standby_socket(self) -> Path:
        return self.root / "standby-run"

    def pgbr_conf(self, host: str) -> Path:
        """pgbackrest.conf of ``host``: primary (pg1 = itself), primary-from-standby (pg2 = the standby over TLS),
        standby (the TLS server's), drill (the repository only)."""
        return self.root / f"pgbackrest-{host}.conf"

    def opsd_conf(self, host: str) -> Path:
        return self.root / f"opsd-{host}.toml"

    def state(self, host: str) -> Path:
        return self.root / f"state-{host}"

    def log(self, host: str, command: str) -> Path:
        """pgBackRest's log file of ``command`` on ``host`` (each host has its own log, lock and spool)."""
        return self.root / f"pgbr-{host}" / "log" / f"{self.sb.stanza}-{command}.log"

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> NetStack:
        try:
            self.sb.root.chmod(0o755)
            for name in ("s3", "primary", "standby", "drill"):
                self.nodes[name] = self.lan.add(name)
            self._names()
            self.sb._tls()  # the sandbox CA signs the hosts' certificates too
            self._s3()
            self._configs()
            self._primary()
            self._drill_pg_control()
            self._standby()
            self._tls_server()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Every process this stack started (and what opsd left under its folder), then the names; the LAN is its
        owner's to close."""
        for data in (self.standby_data, self.sb.pgdata):
            if (data / "postmaster.pid").exists():
                run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]), check=False)
        for proc in self.procs.values():
            stop_process(proc)
        self.procs.clear()
        stop_strays(self.root)
        for node in self.nodes.values():
            shutil.rmtree(Path("/etc/netns") / node.netns, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _names(self) -> None:
        hosts = (f"127.0.0.1 localhost\n{self.nodes['s3'].address} {S3_NAME}\n"
                 f"{self.nodes['standby'].address} {STANDBY_NAME}\n")
        for node in self.nodes.values():
            d = Path("/etc/netns") / node.netns
            d.mkdir(parents=True, exist_ok=True)
            (d / "hosts").write_text(hosts)

    # ------------------------------------------------------------------ processes on hosts
    def exec(self, host: str, argv: Sequence[str]) -> list[str]:
        return self.nodes[host].exec(argv)

    def spawn(self, key: str, host: str, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.exec(host, argv), stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[key] = proc
        return proc

    def reachable(self, host: str, address: str, port: int) -> bool:
        code = f"import socket; socket.create_connection(({address!r}, {port}), timeout=1).close()"
        return run(self.exec(host, [sys.executable, "-c", code]), check=False).returncode == 0

    def pgbackrest(self, host: str, *args: str, conf: str = "", check: bool = True,
                   timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = ["pgbackrest", f"--config={self.pgbr_conf(conf or host)}", f"--stanza={self.sb.stanza}", *args]
        return run(self.exec(host, as_pg(argv)), check=check, timeout=timeout)

    def opsd_argv(self, host: str, *args: str, conf: Path | None = None) -> list[str]:
        return self.exec(host, [sys.executable, "-m", "opsd", "--config", str(conf or self.opsd_conf(host)), *args])

    # ------------------------------------------------------------------ S3 on its own host
    def _s3(self) -> None:
        d = self.root / "s3"
        for sub in ("logs", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        # moto would read a bucket name from the first label of the Host header (virtual-host style): "s3"
        moto = ["env", "S3_IGNORE_SUBDOMAIN_BUCKETNAME=true", sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                "-p", str(MOTO_PORT)]
        self.spawn("moto", "s3", moto, d / "logs" / "moto.log")
        s3 = self.nodes["s3"].address
        (d / "nginx.conf").write_text(nginx_conf(d, listen=TLS_PORT, upstream=MOTO_PORT, tls=self.root / "tls",
                                                 also=(s3,)))
        self.spawn("nginx", "s3", ["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)], d / "logs" / "nginx.out")
        wait_for(lambda: self.reachable("s3", "127.0.0.1", MOTO_PORT) and self.reachable("primary", s3, TLS_PORT),
                 timeout=30, what="moto and nginx on the S3 host")
        bucket = (f"import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:{MOTO_PORT}', region_name="
                  f"'{REGION}', aws_access_key_id='{S3_KEY}', aws_secret_access_key='{S3_SECRET}')"
                  f".create_bucket(Bucket='{BUCKET}')")
        run(self.exec("s3", [sys.executable, "-c", bucket]))

    # ------------------------------------------------------------------ configs
    def _pgbr(self, host: str, *, pg_path: Path, pg_port: int, socket: Path, more: Sequence[str] = ()) -> Path:
        path = self.sb.write_pgbackrest_conf(path=self.pgbr_conf(host), pg_path=pg_path, pg_port=pg_port,
                                             socket_dir=socket)
        pgbr = mkdir_pg(self.root / f"pgbr-{host}", 0o750)
        for sub in ("log", "lock", "spool"):
            mkdir_pg(pgbr / sub)
        text = path.read_text().replace(f"{self.root}/pgbr/", f"{pgbr}/")
        text = text.replace("repo1-s3-endpoint=localhost", f"repo1-s3-endpoint={S3_NAME}")
        timeouts = "".join(f"{k}={v}\n" for k, v in PGBR_TIMEOUTS.items())
        path.write_text(text.replace("[global]\n", "[global]\n" + timeouts, 1) + "".join(f"{x}\n" for x in more))
        return path

    def _configs(self) -> None:
        sb = self.sb
        tls = self._tls_files()
        self._pgbr("primary", pg_path=sb.pgdata, pg_port=sb.pg_port, socket=sb.socket_dir)
        self._pgbr("primary-from-standby", pg_path=sb.pgdata, pg_port=sb.pg_port, socket=sb.socket_dir, more=[
            f"pg2-host={STANDBY_NAME}", "pg2-host-type=tls", f"pg2-host-port={PGBR_TLS_PORT}",
            f"pg2-host-cert-file={tls}/client.crt", f"pg2-host-key-file={tls}/client.key",
            f"pg2-host-ca-file={tls}/ca.crt", f"pg2-path={self.standby_data}", f"pg2-port={self.standby_port}",
            f"pg2-socket-path={self.standby_socket}"])
        self._pgbr("standby", pg_path=self.standby_data, pg_port=self.standby_port, socket=self.standby_socket)
        self._pgbr("drill", pg_path=self.root / "drill-nodata", pg_port=1, socket=self.root / "drill-nosocket")
        server = self.pgbr_conf("standby")  # the TLS server's part, as the playbook's pgbackrest-nodes.conf.j2
        server.write_text(server.read_text().replace("[global]\n", (
            f"[global]\ntls-server-address={self.nodes['standby'].address}\ntls-server-port={PGBR_TLS_PORT}\n"
            f"tls-server-cert-file={tls}/standby.crt\ntls-server-key-file={tls}/standby.key\n"
            f"tls-server-ca-file={tls}/ca.crt\ntls-server-auth={CLIENT_CN}={sb.stanza}\n"), 1))
        for host in ("primary", "standby"):
            mkdir_pg(self.state(host), 0o750)
        data = {"primary": (sb.pgdata, sb.pg_port, sb.socket_dir),
                "standby": (self.standby_data, self.standby_port, self.standby_socket)}
        for host, (pgdata, port, socket) in data.items():
            self.write_opsd_conf(host, pgbackrest_conf=self.pgbr_conf(host), data_dir=pgdata, pg_port=port,
                                 host=socket, state_dir=self.state(host))
        self.write_drill_conf()

    def write_opsd_conf(self, name: str, **kw: object) -> Path:
        """An opsd.toml (as :meth:`Sandbox.opsd_toml`) whose health probes give up after 1 s of silence."""
        conf = self.sb.write_opsd_conf(self.opsd_conf(name), **kw)
        conf.write_text(conf.read_text().replace('probe_io_timeout = "2s"', 'probe_io_timeout = "1s"', 1))
        return conf

    def write_drill_conf(self, *, name: str = "drill", pgbackrest_conf: Path | None = None, extra: str = "",
                         **drill: object) -> Path:
        """The drill host's opsd.toml (``opsd-<name>.toml``): role = "drill", no primary, its own state and scratch
        area (another ``name``: a state directory of its own); ``pgbackrest_conf`` instead of the drill host's."""
        mkdir_pg(self.state(name), 0o750)
        scratch = mkdir_pg(self.root / "drill-scratch", 0o750)
        conf = self.write_opsd_conf(
            name, pgbackrest_conf=pgbackrest_conf or self.pgbr_conf("drill"), state_dir=self.state(name),
            data_dir=self.root / "drill-nodata", pg_port=1, host=self.root / "drill-nosocket",
            drill={"stanzas": [self.sb.stanza], "scratch_dir": str(scratch), "process_max": 2, "priority": "normal",
                   **drill}, extra=extra)
        conf.write_text(conf.read_text().replace('run_as = "postgres"', 'run_as = "postgres"\nrole = "drill"', 1))
        return conf

    def _drill_pg_control(self) -> None:
        """pgBackRest's archive-get reads ``<pg1-path>/global/pg_control`` (system id, version) before it fetches
        anything, and opsd's drill plan reads the newest WAL with archive-get: a drill host needs a pg1-path
        holding the cluster's pg_control, though it runs no cluster (docs/network-faults.md, "Found")."""
        d = mkdir_pg(self.root / "drill-nodata", 0o700)
        mkdir_pg(d / "global", 0o700)
        shutil.copy(self.sb.pgdata / "global" / "pg_control", d / "global" / "pg_control")
        chown_pg(d / "global" / "pg_control", mode=0o600)

    def _tls_files(self) -> Path:
        """The standby's server certificate (DNS:standby.opsd.test) and the primary's client certificate
        (CN=opsd-client), signed by the sandbox CA, readable by postgres."""
        d = self.root / "tls"
        (d / "standby.cnf").write_text(f"subjectAltName=DNS:{STANDBY_NAME}\nbasicConstraints=CA:FALSE\n"
                                       "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "standby.key"), "-out",
             str(d / "standby.csr"), "-subj", f"/CN={STANDBY_NAME}"])
        run(["openssl", "x509", "-req", "-in", str(d / "standby.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
             str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "standby.crt"), "-days", "30", "-extfile",
             str(d / "standby.cnf")])
        crt, key = self.sb.client_cert(CLIENT_CN)
        shutil.move(crt, d / "client.crt")
        shutil.move(key, d / "client.key")
        chown_pg(d / "standby.crt", d / "standby.key", mode=0o600)
        return d

    # ------------------------------------------------------------------ PostgreSQL: primary and standby
    def pg_ctl(self, host: str, action: str) -> None:
        data, name = (self.sb.pgdata, "primary") if host == "primary" else (self.standby_data, "standby")
        run(self.exec(host, as_pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l",
                                   str(self.root / "pglog" / f"{name}.log"), "-w", "-t", "60", action])))

    def _primary(self) -> None:
        sb, addr = self.sb, self.nodes["primary"].address
        for d, mode in ((sb.pgdata, 0o700), (sb.socket_dir, 0o755), (self.root / "pglog", 0o755),
                        (self.standby_socket, 0o755)):
            mkdir_pg(d, mode)
        run(as_pg([str(PG_BIN / "initdb"), "-D", str(sb.pgdata), "--data-checksums", "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]))
        archive = f"pgbackrest --config={self.pgbr_conf('primary')} --stanza={sb.stanza} archive-push %p"
        with (sb.pgdata / "postgresql.conf").open("a") as f:
            f.write(f"\nlisten_addresses = '{addr}'\nport = {sb.pg_port}\nunix_socket_directories = "
                    f"'{sb.socket_dir}'\nwal_level = replica\nmax_wal_senders = 5\nfsync = off\n"
                    f"shared_buffers = 32MB\nhot_standby = on\narchive_mode = on\narchive_command = '{archive}'\n"
                    "wal_sender_timeout = 10s\nwal_receiver_timeout = 10s\n")
        lan = f"{'.'.join(addr.split('.')[:3])}.0/24"
        with (sb.pgdata / "pg_hba.conf").open("a") as f:
            f.write(f"host all all {lan} trust\nhost replication all {lan} trust\n")
        self.pg_ctl("primary", "start")
        self.pgbackrest("primary", "stanza-create")

    def _standby(self) -> None:
        mkdir_pg(self.standby_data, 0o700)
        primary = self.nodes["primary"].address
        run(self.exec("standby", as_pg([str(PG_BIN / "pg_basebackup"), "-h", primary, "-p", str(self.sb.pg_port),
                                        "-U", "postgres", "-D", str(self.standby_data), "-R", "-X", "stream",
                                        "-c", "fast"])), timeout=300)
        with (self.standby_data / "postgresql.conf").open("a") as f:
            f.write(f"listen_addresses = '{self.nodes['standby'].address}'\nport = {self.standby_port}\n"
                    f"unix_socket_directories = '{self.standby_socket}'\n")
        self.pg_ctl("standby", "start")
        self.wait_streaming()

    def _tls_server(self) -> None:
        log = self.root / "pglog" / "pgbackrest-server.log"
        self.spawn("tls-server", "standby", as_pg(["pgbackrest", f"--config={self.pgbr_conf('standby')}", "server"]),
                   log)
        wait_for(lambda: self.reachable("primary", self.nodes["standby"].address, PGBR_TLS_PORT), timeout=30,
                 what="pgBackRest's TLS server on the standby")

    # ------------------------------------------------------------------ questions
    def psql(self, host: str, sql: str) -> str:
        socket, port = ((self.sb.socket_dir, self.sb.pg_port) if host == "primary"
                        else (self.standby_socket, self.standby_port))
        return run(as_pg([str(PG_BIN / "psql"), "-h", str(socket), "-p", str(port), "-XAt", "-v", "ON_ERROR_STOP=1",
                          "-c", sql])).stdout.strip()

    def wait_streaming(self, timeout: float = 60) -> None:
        wait_for(lambda: self.psql("primary", "select count(*) from pg_stat_replication where state = 'streaming'")
                 == "1", timeout=timeout, what="the standby to stream from the primary")

    def info(self, host: str = "primary") -> dict[str, object]:
        data: list[dict[str, object]] = json.loads(self.pgbackrest(host, "--output=json", "info").stdout)
        return data[0]

    def labels(self, host: str = "primary") -> list[str]:
        backups = self.info(host)["backup"]
        assert isinstance(backups, list)
        return [str(b["label"]) for b in backups]


@contextlib.contextmanager
def netstack(lan: Lan) -> Iterator[NetStack]:
    stack = NetStack(lan).up()
    try:
        yield stack
    finally:
        stack.down()
        stack.remove()
