"""Bring up and tear down the sandbox stack in one folder.

Layout under ``root`` (root is 755 so the ``postgres`` user can reach everything it needs)::

    tls/         CA + server certificate (DNS:localhost), ca.crt world-readable
    s3/          moto (plain HTTP on 127.0.0.1) + nginx terminating TLS in front of it
    pgdata/      the primary cluster (postgres, 700)      run/  its unix socket
    pgbr/        pgBackRest log/lock/spool (postgres)      pgbackrest.conf (root:postgres 640, holds the S3 keys)
    state/       opsd's state_dir                          opsd.toml
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsd_sandbox.flaky import FlakyS3, start_nginx
from opsd_sandbox.procs import (
    as_pg,
    as_pg_with_files,
    chown_pg,
    free_port,
    mkdir_pg,
    pg_gid,
    pgbouncer_fd_short,
    port_open,
    run,
    stop_process,
    toml_value,
    uninterrupted,
    wait_for,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER_CLIENT_PASSWORD = "sandbox-app"  # noqa: S105 (a throwaway sandbox)
# the endpoint's name for test hosts on a LAN; no dot: moto takes a dotted Host for a virtual-host bucket
S3_NAME = "opsd-s3"
S3_KEY, S3_SECRET, BUCKET, REGION = "opsd-sandbox-key", "opsd-sandbox-secret-0123456789", "pgbackrest", "us-east-1"


@dataclass
class Sandbox:
    root: Path
    stanza: str = "sandbox"
    archiving: bool = True  # configure archive_mode/archive_command at initdb (else leave it to 'opsd setup')
    archive_async: bool = False
    cipher_pass: str = ""  # encrypt the repository (aes-256-cbc) with this passphrase
    pg_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)  # moto, plain HTTP
    tls_port: int = field(default_factory=free_port)  # nginx, TLS
    drill_port: int = field(default_factory=free_port)  # scratch instances of drills
    # more addresses the TLS front listens on (a test LAN's gateway, for hosts in their own network namespaces,
    # which reach it by the name S3_NAME: pgBackRest 2.45 matches only DNS names in a certificate)
    s3_also_listen: tuple[str, ...] = ()
    _moto: subprocess.Popen[bytes] | None = None
    _nginx: subprocess.Popen[bytes] | None = None
    _pgbouncer: subprocess.Popen[bytes] | None = None
    _minio: Any = None

    @classmethod
    def create(cls, prefix: str = "opsd-sandbox-", **kw: object) -> Sandbox:
        root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        root.chmod(0o755)
        return cls(root=root, **kw)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ paths
    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def pgbackrest_conf(self) -> Path:
        return self.root / "pgbackrest.conf"

    @property
    def opsd_conf(self) -> Path:
        return self.root / "opsd.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.crt"

    @property
    def s3_endpoint(self) -> str:
        return f"https://localhost:{self.tls_port}"

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> Sandbox:
        try:
            self._tls()
            self._s3()
            self._postgres()
            self.write_pgbackrest_conf()
            self.write_opsd_conf()
        except BaseException:
            self.down()
            raise
        return self

    @uninterrupted()  # a stop signal meanwhile waits: it must not cut a teardown short
    def down(self, *, remove: bool = False) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "immediate", "-w", "stop"]),
                check=False)
        stop_process(self._pgbouncer)
        stop_process(self._nginx)
        stop_process(self._moto)
        if self._minio is not None:
            self._minio.stop()
            self._minio = None
        self._nginx = self._moto = self._pgbouncer = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ------------------------------------------------------------------ TLS
    def _tls(self) -> None:
        d = self.root / "tls"
        d.mkdir(mode=0o755, exist_ok=True)
        (d / "ext.cnf").write_text(
            f"subjectAltName=DNS:localhost,DNS:{S3_NAME},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        ossl = ["openssl"]
        run([*ossl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out",
             str(d / "ca.crt"), "-days", "30", "-subj", "/CN=opsd-sandbox-ca"])
        run([*ossl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "server.key"), "-out",
             str(d / "server.csr"), "-subj", "/CN=localhost"])
        run([*ossl, "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
             str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "server.crt"), "-days", "30", "-extfile",
             str(d / "ext.cnf")])
        (d / "ca.crt").chmod(0o644)

    def client_cert(self, cn: str) -> tuple[Path, Path]:
        """A client certificate (CN=``cn``, clientAuth) signed by the sandbox CA, readable by postgres, for
        pgBackRest's TLS server (``tls-server-auth``); returns (cert, key)."""
        d = self.root / "tls"
        crt, key = d / f"client-{cn}.crt", d / f"client-{cn}.key"
        (d / "client.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                                      "extendedKeyUsage=clientAuth\n")
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(d / "client.csr"),
             "-subj", f"/CN={cn}"])
        run(["openssl", "x509", "-req", "-in", str(d / "client.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
             str(d / "ca.key"), "-CAcreateserial", "-out", str(crt), "-days", "30", "-extfile", str(d / "client.cnf")])
        for f in (crt, key):
            chown_pg(f, mode=0o600)
        return crt, key

    def server_key_for_pg(self) -> tuple[Path, Path]:
        """The sandbox server certificate and a copy of its key readable by postgres (pgBackRest's TLS server)."""
        d = self.root / "tls"
        key = d / "server-pg.key"
        shutil.copy(d / "server.key", key)
        chown_pg(key, mode=0o600)
        return d / "server.crt", key

    # ------------------------------------------------------------------ S3: moto + nginx TLS front (or MinIO)
    def _s3(self) -> None:
        if os.environ.get("OPSD_TEST_S3") == "minio":
            self._s3_minio()
            return
        self._s3_moto()

    def _s3_minio(self) -> None:
        """A real MinIO (it checks signatures) in Docker through testcontainers, serving TLS with the sandbox's
        certificate. Only where a Docker engine exists: OPSD_TEST_S3=minio, pip install '.[minio]'."""
        from testcontainers.core.container import DockerContainer

        certs = self.root / "s3" / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.root / "tls" / "server.crt", certs / "public.crt")
        shutil.copy(self.root / "tls" / "server.key", certs / "private.key")
        (certs / "private.key").chmod(0o644)  # read by MinIO's own user inside the container
        c = (DockerContainer("minio/minio:latest").with_command("server /data")
             .with_env("MINIO_ROOT_USER", S3_KEY).with_env("MINIO_ROOT_PASSWORD", S3_SECRET)
             .with_volume_mapping(str(certs), "/root/.minio/certs", "ro").with_exposed_ports(9000))
        c.start()
        self._minio = c
        self.tls_port = int(c.get_exposed_port(9000))
        wait_for(lambda: port_open(self.tls_port), timeout=60, what=f"MinIO on port {self.tls_port}")

        def bucket() -> bool:
            try:
                self.s3_client().create_bucket(Bucket=BUCKET)
            except Exception:  # not ready yet (TLS handshake, 503)
                return False
            return True

        wait_for(bucket, timeout=60, what="the MinIO bucket")

    def _s3_moto(self) -> None:
        d = self.root / "s3"
        for sub in ("logs", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        log = (d / "logs" / "moto.log").open("ab")
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)]
        with uninterrupted():  # recorded before a stop signal acts: down() stops it
            self._moto = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.start_s3()
        wait_for(lambda: port_open(self.s3_port), timeout=30, what=f"moto on port {self.s3_port}")
        self.s3_client().create_bucket(Bucket=BUCKET)

    def s3_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.s3_endpoint, region_name=REGION, aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET, verify=str(self.ca_file),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def stop_s3(self) -> None:
        """Stop the TLS front (the endpoint becomes unreachable; moto keeps the data)."""
        stop_process(self._nginx)
        self._nginx = None
        wait_for(lambda: not port_open(self.tls_port), timeout=15, what="the TLS front to stop")

    @uninterrupted()  # recorded before a stop signal acts: down() stops it
    def start_s3(self) -> None:
        """(Re)start the TLS front in front of moto: the endpoint is back, with its data."""
        self._nginx = start_nginx(self.root / "s3", listen=self.tls_port, upstream=self.s3_port,
                                  tls=self.root / "tls", also=self.s3_also_listen)

    def flaky_s3(self, name: str = "flaky") -> FlakyS3:
        """Another TLS endpoint for the same moto, through a proxy that refuses a share of requests with 503 and
        adds latency (both zero until :meth:`FlakyS3.set`); close it when done."""
        return FlakyS3(self.root / f"s3-{name}", tls=self.root / "tls", moto_port=self.s3_port)

    # ------------------------------------------------------------------ PostgreSQL
    def _postgres(self) -> None:
        mkdir_pg(self.pgdata, 0o700)
        mkdir_pg(self.socket_dir, 0o755)
        mkdir_pg(self.root / "pglog", 0o755)
        for sub in ("log", "lock", "spool"):
            mkdir_pg(self.root / "pgbr" / sub)
        chown_pg(self.root / "pgbr", mode=0o750)
        mkdir_pg(self.state_dir, 0o750)
        run(as_pg([str(PG_BIN / "initdb"), "-D", str(self.pgdata), "--data-checksums", "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]))
        conf = [
            "listen_addresses = '127.0.0.1'", f"port = {self.pg_port}",
            f"unix_socket_directories = '{self.socket_dir}'", "wal_level = replica",
            "max_wal_senders = 5", "fsync = off", "logging_collector = on", "log_directory = 'log'",
            "shared_buffers = 64MB",
        ]
        if self.archiving:
            conf += ["archive_mode = on", f"archive_command = '{self.archive_command()}'"]
        with (self.pgdata / "postgresql.conf").open("a") as f:
            f.write("\n# opsd sandbox\n" + "\n".join(conf) + "\n")
        self.pg_ctl("start")

    def archive_command(self) -> str:
        return f"pgbackrest --config={self.pgbackrest_conf} --stanza={self.stanza} archive-push %p"

    def pg_ctl(self, action: str, *extra: str) -> None:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.root / "pglog" / "primary.log"),
                   "-w", "-t", "60", *extra, action]))

    def psql(self, sql: str, *, db: str = "postgres") -> str:
        res = run(as_pg([str(PG_BIN / "psql"), "-h", str(self.socket_dir), "-p", str(self.pg_port), "-d", db,
                         "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]))
        return res.stdout.strip()

    @property
    def conninfo(self) -> str:
        return f"host={self.socket_dir} port={self.pg_port} user=postgres dbname=postgres"

    # ------------------------------------------------------------------ PgBouncer
    def start_pgbouncer(self, *, pool_size: int = 2, admin_user: str = "opsd_admin", admin_password: str = "",
                        pool_mode: str = "session", pg_port: int | None = None, max_client_conn: int = 200) -> int:
        """A PgBouncer (run as postgres) in front of the cluster (or the one on ``pg_port``): database 'postgres'
        with ``pool_size`` server connections; ``admin_user`` may use the admin console. With ``admin_password``
        authentication is md5 and clients log in as postgres with the password :data:`PGBOUNCER_CLIENT_PASSWORD`;
        else trust."""
        d = mkdir_pg(self.root / "pgbouncer", 0o755)
        port = free_port()
        auth = "md5" if admin_password else "trust"
        client = PGBOUNCER_CLIENT_PASSWORD if admin_password else ""
        (d / "users.txt").write_text(f'"postgres" "{client}"\n"{admin_user}" "{admin_password}"\n')
        (d / "pgbouncer.ini").write_text(textwrap.dedent(f"""\
            [databases]
            postgres = host={self.socket_dir} port={pg_port or self.pg_port} dbname=postgres user=postgres \
pool_size={pool_size}
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {port}
            unix_socket_dir =
            auth_type = {auth}
            auth_file = {d}/users.txt
            admin_users = {admin_user}
            pool_mode = {pool_mode}
            max_client_conn = {max_client_conn}
            default_pool_size = {pool_size}
            logfile = {d}/pgbouncer.log
            """))
        for f in ("users.txt", "pgbouncer.ini"):
            chown_pg(d / f, mode=0o600)
        self._pgbouncer = subprocess.Popen(as_pg_with_files(["pgbouncer", str(d / "pgbouncer.ini")], max_client_conn),
                                           stdout=(d / "out.log").open("ab"), stderr=subprocess.STDOUT,
                                           start_new_session=True)
        wait_for(lambda: port_open(port), timeout=15, what=f"pgbouncer on port {port}")
        if short := pgbouncer_fd_short((d / "pgbouncer.log").read_text()):
            raise RuntimeError(f"pgbouncer cannot hold max_client_conn = {max_client_conn}: {short}")
        return port

    def stop_pgbouncer(self) -> None:
        stop_process(self._pgbouncer)
        self._pgbouncer = None

    # ------------------------------------------------------------------ configs
    def write_pgbackrest_conf(self, *, endpoint_port: int | None = None, path: Path | None = None,
                              stanza: str | None = None, pg_path: Path | None = None, pg_port: int | None = None,
                              socket_dir: Path | None = None) -> Path:
        pgbr = self.root / "pgbr"
        lines = [
            "[global]", "repo1-type=s3", "repo1-path=/repo", f"repo1-s3-bucket={BUCKET}",
            "repo1-s3-endpoint=localhost", f"repo1-storage-port={endpoint_port or self.tls_port}",
            "repo1-s3-uri-style=path", f"repo1-s3-region={REGION}", f"repo1-s3-key={S3_KEY}",
            f"repo1-s3-key-secret={S3_SECRET}", f"repo1-storage-ca-file={self.ca_file}",
            "repo1-storage-verify-tls=y", "repo1-retention-full=2", f"log-path={pgbr}/log",
            f"lock-path={pgbr}/lock", "log-level-console=warn", "log-level-file=detail",
            "compress-type=zst", "process-max=2", "start-fast=y",
        ]
        if self.archive_async:
            lines += ["archive-async=y", f"spool-path={pgbr}/spool"]
        if self.cipher_pass:
            lines += ["repo1-cipher-type=aes-256-cbc", f"repo1-cipher-pass={self.cipher_pass}"]
        lines += ["", f"[{stanza or self.stanza}]", f"pg1-path={pg_path or self.pgdata}",
                  f"pg1-port={pg_port or self.pg_port}", f"pg1-socket-path={socket_dir or self.socket_dir}",
                  "pg1-user=postgres", ""]
        target = path or self.pgbackrest_conf
        target.write_text("\n".join(lines))
        if os.geteuid() == 0:
            os.chown(target, 0, pg_gid())
        target.chmod(0o640)
        return target

    def opsd_toml(self, *, pgbackrest_conf: Path | None = None, schedule: dict[str, str] | None = None,
                  drill: dict[str, object] | None = None, extra: str = "", stanza: str | None = None,
                  data_dir: Path | None = None, pg_port: int | None = None, host: Path | None = None,
                  state_dir: Path | None = None) -> str:
        """This sandbox's opsd.toml; the keyword arguments aim it at another cluster, stanza or state dir."""
        sched = {"full": "0 1 * * *", "diff": "", "incr": "", "check": "*/30 * * * *", "drill": "", "verify": "",
                 "report": "", **(schedule or {})}
        sched_lines = "\n".join(f'{k} = "{v}"' for k, v in sched.items())
        drill_keys = {"port": self.drill_port, **(drill or {})}
        drill_lines = "\n".join(f"{k} = {toml_value(v)}" for k, v in drill_keys.items())
        return textwrap.dedent(f"""\
            [opsd]
            state_dir = "{state_dir or self.state_dir}"
            timezone = "UTC"
            run_as = "postgres"

            [pgbackrest]
            config = "{pgbackrest_conf or self.pgbackrest_conf}"
            stanza = "{stanza or self.stanza}"
            probe_io_timeout = "2s"

            [postgres]
            data_dir = "{data_dir or self.pgdata}"
            bin_dir = "{PG_BIN}"
            host = "{host or self.socket_dir}"
            port = {pg_port or self.pg_port}
            user = "postgres"
            dbname = "postgres"

            [schedule]
            """) + sched_lines + "\n\n[drill]\n" + drill_lines + "\n" + extra

    def write_opsd_conf(self, path: Path | None = None, **kw: object) -> Path:
        target = path or self.opsd_conf
        target.write_text(self.opsd_toml(**kw))  # type: ignore[arg-type]
        target.chmod(0o644)
        return target

