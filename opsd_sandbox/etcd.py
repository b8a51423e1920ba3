"""A real etcd cluster for the fleet tests: ``members`` etcd processes (Debian's ``etcd-server``) on this machine,
peers over plain HTTP on loopback, clients over HTTP or, given ``tls=(ca, cert, key)``, HTTPS with client
certificates required (the same CA signs the server's and the clients' certificates).

Layout under ``root``: ``etcd-<i>/data`` and ``etcd-<i>/etcd.log`` per member (logs are kept: a failed test
reads them). Election timings are short (heartbeat 100 ms, election 1 s) so a lost member is noticed in a test's
time; a cluster starts in a couple of seconds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from opsd_sandbox.procs import free_port, run, wait_for

ETCD = "/usr/bin/etcd"


def available() -> str:
    """'' when etcd is installed, else what is missing (the tests say so instead of failing)."""
    return "" if Path(ETCD).exists() else f"missing {ETCD} (run scripts/bootstrap)"


@dataclass(frozen=True)
class Tls:
    """A CA, a server certificate for 127.0.0.1 (``EtcdCluster(tls=t.server)``) and a client certificate."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path

    @property
    def server(self) -> tuple[Path, Path, Path]:
        return self.ca, self.cert, self.key


def make_tls(d: Path) -> Tls:
    """A throwaway CA under ``d`` and the certificates it signs. Neither certificate has a CommonName: with
    authentication on, etcd 3.4's gateway refuses (HTTP 400) a request whose client certificate has one."""
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca, cakey = d / "ca.crt", d / "ca.key"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(cakey), "-out", str(ca),
         "-days", "2", "-subj", "/CN=opsd-etcd-test-ca"])
    server_ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth"
    for name, ext in (("server", server_ext), ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / f"{name}.key"), "-out",
             str(d / f"{name}.csr"), "-subj", f"/O=opsd-etcd-{name}"])
        run(["openssl", "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(ca), "-CAkey", str(cakey),
             "-CAcreateserial", "-out", str(d / f"{name}.crt"), "-days", "2", "-extfile", str(d / f"{name}.ext")])
    return Tls(ca, d / "server.crt", d / "server.key", d / "client.crt", d / "client.key")


@dataclass
class Member:
    name: str
    home: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def log(self) -> Path:
        return self.home / "etcd.log"


class EtcdCluster:
    """``with EtcdCluster(tmp).start() as c: Etcd(c.endpoints, ...)``; :meth:`down` stops every member."""

    def __init__(self, root: Path, members: int = 3, *, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.root = root
        self.tls = tls
        self.token = f"opsd-{os.getpid()}-{free_port()}"
        self.members = [Member(f"m{i}", root / f"etcd-{i}") for i in range(members)]
        scheme = "https" if tls else "http"
        self.endpoints: list[str] = [f"{scheme}://127.0.0.1:{m.client_port}" for m in self.members]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> EtcdCluster:
        """Every member, then wait until the cluster has a leader and a put through the first member succeeds."""
        try:
            for i in range(len(self.members)):
                self.start_member(i, wait=False)
            wait_for(self.writable, timeout=30, what=f"etcd ({len(self.members)} members) to accept a put")
        except BaseException:
            self.down()
            raise
        return self

    def start_member(self, i: int, *, wait: bool = True) -> None:
        """Start member ``i`` (again, with its data: ``--initial-cluster-state`` is ignored once data exists)."""
        m = self.members[i]
        if m.proc is not None and m.proc.poll() is None:
            return
        m.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        with m.log.open("ab") as log:
            m.proc = subprocess.Popen(self._argv(i), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            wait_for(lambda: self.status(i) is not None, timeout=30, what=f"etcd member {m.name} to answer")

    def kill(self, i: int) -> None:
        """SIGKILL member ``i`` (a lost host); its data stays for :meth:`start_member`."""
        m = self.members[i]
        if m.proc is not None and m.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(m.proc.pid, signal.SIGKILL)
            m.proc.wait(timeout=10)
        m.proc = None

    def down(self) -> None:
        """Every member SIGKILLed (idempotent). Not SIGTERM: a stopping leader first hands its leadership to a
        peer, which stalls for up to ~7 s when the peers are stopping too; etcd's data survives a kill."""
        for i in range(len(self.members)):
            self.kill(i)

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.down()

    def logs(self, lines: int = 30) -> str:
        """The last ``lines`` of every member's log, for a failed test's message."""
        out = []
        for m in self.members:
            text = m.log.read_text(errors="replace").splitlines()[-lines:] if m.log.exists() else []
            out.append(f"--- {m.name} ({m.log})\n" + "\n".join(text))
        return "\n".join(out)

    # ------------------------------------------------------------------ probes (independent of opsd's adapter)
    def post(self, i: int, path: str, body: dict[str, object], timeout: float = 2) -> dict[str, object]:
        """POST ``body`` to member ``i``'s JSON gateway; raises OSError / ValueError when it does not answer."""
        req = urllib.request.Request(f"{self.endpoints[i]}/v3/{path}", data=json.dumps(body).encode(),  # noqa: S310
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout, context=self._ssl()) as r:  # noqa: S310 (loopback)
            return dict(json.loads(r.read()))

    def status(self, i: int) -> dict[str, object] | None:
        with contextlib.suppress(OSError, ValueError):
            return self.post(i, "maintenance/status", {})
        return None

    def writable(self) -> bool:
        key = base64.b64encode(b"/opsd-sandbox/ready").decode()
        for i, m in enumerate(self.members):
            if m.proc is not None and m.proc.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    self.post(i, "kv/put", {"key": key, "value": key})
                    return True
        return False

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ca, cert, key = self.tls
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def _argv(self, i: int) -> list[str]:
        m = self.members[i]
        client = self.endpoints[i]
        argv = [ETCD, "--name", m.name, "--data-dir", str(m.home / "data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", ",".join(f"{x.name}={x.peer_url}" for x in self.members),
                "--initial-cluster-state", "new", "--initial-cluster-token", self.token,
                "--heartbeat-interval", "100", "--election-timeout", "1000", "--log-outputs", "stderr"]
        if self.tls:
            ca, cert, key = self.tls
            argv += ["--cert-file", str(cert), "--key-file", str(key), "--trusted-ca-file", str(ca),
                     "--client-cert-auth"]
        return argv
