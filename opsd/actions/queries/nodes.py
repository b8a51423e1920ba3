"""The nodes a query-statistics snapshot reads: the local server (named by its Patroni member name under
``[patroni] url``, else by this host's name) and its standbys (the Patroni members that are replicas, and the
``[queries] standbys`` conninfos). The local primary gives statements and relations; a standby its relations
only (its index scans count for the unused-index verdicts: a replica's reads are reads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opsd.adapters import cluster_members
from opsd.context import Context
from opsd.core.role import PATRONI_FOLLOWERS, NodeRole
from opsd.db.querystats import conninfo_address
from opsd.errors import OpsdError

REPLICA_ROLES = PATRONI_FOLLOWERS | {"replica", "quorum_standby"}


@dataclass(frozen=True)
class Node:
    name: str
    local: bool
    conninfo: str | None = None  # libpq conninfo of a standby; None: the local server of [postgres]


@dataclass(frozen=True)
class Nodes:
    nodes: list[Node]
    problems: list[str] = field(default_factory=list)  # why a standby may be missing (Patroni did not answer)


def local_name(ctx: Context, role: NodeRole | None = None) -> str:
    """The Patroni member name (as the role decision learnt it), else this host's name."""
    if role is not None and role.name:
        return role.name
    return cluster_members.host_name()


def _patroni_standbys(ctx: Context, me: str) -> tuple[list[Node], list[str]]:
    p = ctx.settings.patroni
    if not p.url:
        return [], []
    try:
        found = cluster_members.members(p.url, p.timeout.total_seconds(), p.ca_file)
    except OpsdError as e:
        return [], [f"standbys: {e}: their index scans are not read this time"]
    nodes = [Node(m.name, False, f"host={m.host} port={m.port}") for m in found
             if m.name != me and m.role in REPLICA_ROLES and m.host]
    return nodes, []


def cluster_nodes(ctx: Context, role: NodeRole | None = None) -> Nodes:
    """The local node first, then each standby once: a configured standby that is a Patroni member too is read
    once, under its member name, with the configured conninfo. A configured standby is named by its host:port."""
    me = local_name(ctx, role)
    members, problems = _patroni_standbys(ctx, me)
    by_address = {conninfo_address(n.conninfo or ""): n for n in members}
    standbys = list(members)
    for conninfo in ctx.settings.queries.standbys:
        address = conninfo_address(conninfo)
        member = by_address.get(address)
        if member is not None:
            standbys[standbys.index(member)] = Node(member.name, False, conninfo)
        elif address not in {me, *(n.name for n in standbys)}:
            standbys.append(Node(address, False, conninfo))
    return Nodes([Node(me, True), *standbys], problems)
