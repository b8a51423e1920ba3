"""Test hosts on a network of their own: network namespaces joined by veth pairs to one bridge.

Addresses come from 198.18.0.0/15, the range set aside for network tests (RFC 2544): nothing else on this machine
or beyond it answers there, and only addresses this module creates are ever used. The bridge side of each host's
link holds the fault switches: :meth:`Lan.cut` takes the link down (packets are lost, not refused: a TCP peer
sees a timeout, as on a real network), :meth:`Lan.shape` makes it slow and lossy: a rate limit (tbf) and random
loss (iptables' statistic match) in both directions. This machine's kernel has no netem (``tc qdisc add ... netem``:
"Specified qdisc kind is unknown"), so a fixed delay is not available; a low rate queues packets, which delays them.

    lan = Lan.create(3)                      # bridge opsd-br3, the machine itself is 198.18.3.1
    s3 = lan.add("s3")                       # netns opsd-s3, 198.18.3.2, default route via the bridge
    run(s3.exec(["nginx", ...]))             # a process on that host
    lan.cut(s3); lan.heal(s3); lan.shape(s3, rate_kbit=800, loss_pct=5)
    lan.close()
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opsd_sandbox.procs import run

NET_PREFIX = "198.18"  # RFC 2544 benchmarking range: ours alone


def missing() -> str:
    """Why test hosts cannot be made here ('' when they can)."""
    if shutil.which("ip") is None:
        return "no 'ip' command (apt-get install iproute2)"
    res = run(["ip", "netns", "list"], check=False)
    if res.returncode != 0:
        return f"network namespaces unavailable: {res.stderr.strip()}"
    return ""


@dataclass(frozen=True)
class Node:
    """One test host: its namespace, its address and the bridge side of its link."""

    name: str
    netns: str
    address: str
    link: str  # the veth end on the bridge (in the machine's namespace): the fault switches act on it

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    def exec(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run on this host (its network, the machine's filesystem and users)."""
        return ["ip", "netns", "exec", self.netns, *argv]


@dataclass
class Lan:
    """A bridge and the test hosts on it; the machine itself is ``<prefix>.<n>.1``."""

    number: int
    nodes: dict[str, Node] = field(default_factory=dict)
    _loss: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, number: int) -> Lan:
        """A new LAN 198.18.``number``.0/24 (1-254); an old one of the same number (a crashed run) is removed."""
        lan = cls(number)
        lan._remove_leftovers()
        run(["ip", "link", "add", lan.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{lan.gateway}/24", "dev", lan.bridge])
        run(["ip", "link", "set", lan.bridge, "up"])
        run(["iptables", "-I", "FORWARD", *lan._accept_rule()], check=False)
        return lan

    @property
    def bridge(self) -> str:
        return f"opsd-br{self.number}"

    @property
    def gateway(self) -> str:
        return f"{NET_PREFIX}.{self.number}.1"

    def add(self, name: str) -> Node:
        """A new host ``name`` (at most 8 characters) with the next free address."""
        if len(name) > 8 or not name.isalnum():
            raise ValueError(f"host name {name!r}: 1-8 letters or digits (it names network interfaces)")
        netns, outer, inner = f"opsd-{self.number}-{name}", f"o{self.number}{name}", f"i{self.number}{name}"
        node = Node(name, netns, f"{NET_PREFIX}.{self.number}.{len(self.nodes) + 2}", outer)
        run(["ip", "netns", "add", netns])
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
        run(["ip", "link", "set", inner, "netns", netns])
        run(["ip", "link", "set", outer, "master", self.bridge, "up"])
        for argv in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", inner, "name", "eth0"],
                     ["ip", "addr", "add", f"{node.address}/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                     ["ip", "route", "add", "default", "via", self.gateway]):
            run(node.exec(argv))
        self.nodes[name] = node
        return node

    def cut(self, node: Node) -> None:
        """The host's link goes down: its packets are lost both ways until :meth:`heal`."""
        run(["ip", "link", "set", node.link, "down"])

    def heal(self, node: Node) -> None:
        run(["ip", "link", "set", node.link, "up"])

    def shape(self, node: Node, *, rate_kbit: int = 0, loss_pct: float = 0.0) -> None:
        """A slow, lossy link, both directions (0, 0: a clean link again)."""
        run(["tc", "qdisc", "del", "dev", node.link, "root"], check=False)
        run(node.exec(["tc", "qdisc", "del", "dev", "eth0", "root"]), check=False)
        for rule in self._loss_rules(node, self._loss.pop(node.name, 0.0)):
            run(["iptables", "-D", "FORWARD", *rule], check=False)
        if rate_kbit:
            tbf = ["tbf", "rate", f"{rate_kbit}kbit", "burst", "16kbit", "latency", "2s"]
            run(["tc", "qdisc", "add", "dev", node.link, "root", *tbf])
            run(node.exec(["tc", "qdisc", "add", "dev", "eth0", "root", *tbf]))
        for rule in self._loss_rules(node, loss_pct):
            run(["iptables", "-I", "FORWARD", *rule])
        if loss_pct:
            self._loss[node.name] = loss_pct

    @staticmethod
    def _loss_rules(node: Node, loss_pct: float) -> list[list[str]]:
        if not loss_pct:
            return []
        drop = ["-m", "statistic", "--mode", "random", "--probability", f"{loss_pct / 100:.4f}", "-j", "DROP"]
        return [["-m", "physdev", f"--physdev-{way}", node.link, *drop] for way in ("in", "out")]

    def _accept_rule(self) -> list[str]:
        """Bridged packets pass iptables' FORWARD chain here (br_netfilter), whose policy a Docker engine sets to
        DROP: the LAN's own traffic is let through first."""
        return ["-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    def close(self) -> None:
        for node in list(self.nodes.values()):
            self.shape(node)
        for node in self.nodes.values():
            run(["ip", "netns", "del", node.netns], check=False)  # its veth pair goes with it
        self.nodes.clear()
        run(["ip", "link", "del", self.bridge], check=False)
        run(["iptables", "-D", "FORWARD", *self._accept_rule()], check=False)

    def _remove_leftovers(self) -> None:
        res = run(["ip", "netns", "list"], check=False)
        for line in res.stdout.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(f"opsd-{self.number}-"):
                run(["ip", "netns", "del", ns], check=False)
        run(["ip", "link", "del", self.bridge], check=False)
