"""A fleet on the real stack: a three-member etcd (Debian's etcd-server), three small clusters with their own
stanzas publishing themselves, and two drill hosts (daemons with state directories, scratch areas and ports of
their own) that share the drills through leases and claims. Each test uses a fleet name of its own (its own keys),
so they run in any order. Time is compressed through the schedule ([fleet] drill_every of PERIOD seconds), not
sleeps."""

from __future__ import annotations

import base64
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from opsd.core.fleet.keys import Keys
from opsd.core.fleet.pick import Drills, drills_of, order
from opsd.core.records.fleet import Claim, ClusterEntry, DrillSummary, FleetState
from opsd_sandbox import Sandbox
from opsd_sandbox.etcd import EtcdCluster
from opsd_sandbox.procs import free_port, mkdir_pg
from tests.conftest import REPO, opsd
from tests.integration.helpers import Cluster, events, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAMES = ("fa", "fb", "fc")
OFF = {"full": "", "diff": "", "incr": "", "check": "", "drill": "", "verify": "", "report": ""}
# [fleet] drill_every: a drill here takes 8 to 15 s (restored with parallel fetches at normal priority, FAST) and
# each cluster is drilled again every 20 to 25 s (min_gap 10 s); a period of 60 s stays clear of that, and of a
# cluster's last drill when its status is read after the fortnight (measured: at most 30 s before)
PERIOD = 60
FAST = {"process_max": 4, "priority": "normal"}  # nothing here depends on how fast or how nicely a copy restores


@dataclass
class Fleet:
    sb: Sandbox
    etcd: EtcdCluster
    clusters: dict[str, Cluster]
    repo_conf: Path  # a drill host's pgbackrest.conf for the repository "default": all three stanzas

    def fleet_toml(self, name: str, **keys: object) -> str:
        base = {"endpoints": self.etcd.endpoints, "name": name, "ttl": "4s", "timeout": "2s",
                "drill_every": f"{PERIOD}s", "min_gap": "10s", "publish_every": "2s", **keys}
        repos = base.pop("repositories", {})
        assert isinstance(repos, dict)
        return ("\n[fleet]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in base.items()) +
                "\n\n[fleet.repositories]\n" + "".join(f"{k} = {json.dumps(str(v))}\n" for k, v in repos.items()))

    def publish(self, name: str, which: str, tmp: Path, **keys: object) -> None:
        """The cluster host's fleet job, once (as its daemon does every publish_every). A cluster published under
        another name (``cluster=``) gets a stanza and a state directory of its own: none of ``which``'s drills are
        its."""
        c = self.clusters[which]
        other = {"state_dir": mkdir_pg(self.sb.root / f"fleet-{name}-{keys['cluster']}", 0o750),
                 "stanza": keys["cluster"]} if "cluster" in keys else {}
        conf = c.write_conf(tmp / f"{name}-{which}-{keys.get('cluster', '')}.toml", schedule=OFF,
                            extra=self.fleet_toml(name, **keys), **other)
        res = opsd(conf, "daemon", "--once")
        assert res.returncode == 0, res.stderr

    def state_dir(self, name: str, host: str) -> Path:
        return self.sb.root / f"fleet-{name}-{host}"

    def drill_host(self, name: str, host: str, tmp: Path) -> Path:
        state = mkdir_pg(self.state_dir(name, host), 0o750)  # where the postgres user reaches it
        conf = tmp / f"{host}.toml"
        text = self.sb.opsd_toml(pgbackrest_conf=self.repo_conf, state_dir=state, schedule={**OFF, "drill": "2s"},
                                 drill={"port": free_port(), "scratch_dir": str(state / "scratch"), **FAST},
                                 extra=self.fleet_toml(name, host=host, repositories={"default": str(self.repo_conf)}))
        conf.write_text(text.replace('run_as = "postgres"', 'run_as = "postgres"\nrole = "drill"'))
        conf.chmod(0o644)
        return conf


def _ready(c: Cluster) -> None:
    """A cluster of the fleet: archiving to its stanza, a table, a full backup."""
    c.initdb()
    assert (res := opsd(c.conf, "setup", "--restart")).returncode == 0, res.stderr
    c.psql(f"create table stock(id int primary key, note text); insert into stock "
           f"select g, repeat('{c.name}', 50) from generate_series(1, 2000) g")
    assert (res := opsd(c.conf, "backup", "--type", "full")).returncode == 0, res.stderr


@pytest.fixture(scope="module")
def fleet(stack: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    clusters = {n: Cluster(stack, n) for n in NAMES}
    with EtcdCluster(root / "etcd", 3).start() as etcd:
        try:
            with ThreadPoolExecutor(len(clusters)) as pool:  # the three at once: each mostly waits on processes
                list(pool.map(_ready, clusters.values()))
            repo_conf = _repo_conf(stack, clusters, stack.root / "pgbackrest-fleet.conf")
            yield Fleet(stack, etcd, clusters, repo_conf)
        finally:
            for c in clusters.values():
                c.stop_quietly()


def _repo_conf(sb: Sandbox, clusters: dict[str, Cluster], path: Path) -> Path:
    """The drill hosts' pgbackrest.conf for the repository "default": the repository's keys, every stanza."""
    fa = clusters["fa"]
    sb.write_pgbackrest_conf(path=path, stanza="fa", pg_path=fa.pgdata, pg_port=fa.port)
    with path.open("a") as f:
        for c in (clusters[n] for n in NAMES[1:]):
            f.write(f"\n[{c.name}]\npg1-path={c.pgdata}\npg1-port={c.port}\npg1-socket-path={sb.socket_dir}\n"
                    "pg1-user=postgres\n")
    return path


def _daemon(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "--log-format", "json",
                             "--log-level", "info", "daemon"], stdout=subprocess.DEVNULL, stderr=log.open("wb"),
                            cwd=REPO, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _results(f: Fleet, name: str) -> list[tuple[str, DrillSummary]]:
    from opsd.adapters.etcd import Etcd

    keys = Keys(name)
    e = Etcd(f.etcd.endpoints, timeout=3)
    try:
        return sorted(((keys.cluster_of_result(kv.key), DrillSummary.model_validate_json(kv.value))
                       for kv in e.range(keys.results)), key=lambda x: x[1].started_at)
    finally:
        e.close()


def _revision(f: Fleet) -> int:
    """etcd's revision (one more per write, a transaction counting once), from any member that answers."""
    key = base64.b64encode(b"/opsd-test/none").decode()
    for i in range(len(f.etcd.endpoints)):
        try:
            header = f.etcd.post(i, "kv/range", {"key": key, "count_only": True})["header"]
        except (OSError, ValueError):
            continue
        return int(header["revision"])  # type: ignore[index]
    raise AssertionError("no etcd member answers")


def _entries(f: Fleet, name: str) -> list[ClusterEntry]:
    from opsd.adapters.etcd import Etcd

    e = Etcd(f.etcd.endpoints, timeout=3)
    try:
        return [ClusterEntry.model_validate_json(kv.value) for kv in e.range(Keys(name).clusters)]
    finally:
        e.close()


def _known(f: Fleet, name: str) -> dict[str, Drills]:
    results: dict[str, list[DrillSummary]] = {}
    for c, d in _results(f, name):
        results.setdefault(c, []).append(d)
    return {e.cluster: drills_of(e, results.get(e.cluster, [])) for e in _entries(f, name)}


def _claims(f: Fleet, name: str) -> dict[str, tuple[int, Claim]]:
    from opsd.adapters.etcd import Etcd

    e = Etcd(f.etcd.endpoints, timeout=3)
    try:
        return {c.cluster: (kv.create_revision, c) for kv in e.range(Keys(name).claims)
                if (c := Claim.model_validate_json(kv.value))}
    finally:
        e.close()


def _state(state_dir: Path) -> FleetState:
    return FleetState.model_validate_json((state_dir / "fleet.json").read_bytes())


def test_a_fortnight_every_cluster_is_drilled_each_period_oldest_first_never_two_at_once(
        fleet: Fleet, tmp_path: Path) -> None:
    name = "fortnight"
    for n in NAMES:
        fleet.publish(name, n, tmp_path)
    fleet.publish(name, "fa", tmp_path, cluster="offsite", repository="offsite")  # no drill host has its keys
    first = _revision(fleet)
    # the order the fleet owes: the oldest passed drill first (the clusters' own histories may hold drills of the
    # other tests of this module, imported from their repositories: they count as proof)
    expected = [e.cluster for e in order(_entries(fleet, name), _known(fleet, name)) if e.cluster in NAMES]
    start = datetime.now().astimezone()
    hosts = [_daemon(fleet.drill_host(name, h, tmp_path), tmp_path / f"{h}.log") for h in ("d1", "d2")]
    try:
        wait_until(lambda: datetime.now().astimezone() - start > timedelta(seconds=2 * PERIOD + 5)
                   and len({c for c, d in _results(fleet, name) if d.passed}) == 3, timeout=2 * PERIOD + 125,
                   what="two periods of drills")
    finally:
        for p in hosts:
            _stop(p)
    writes = _revision(fleet) - first
    results = _results(fleet, name)
    # etcd's load (docs/fleet.md, "How far one etcd carries this"): a drill is a claim, the host entry saying what
    # it drills and then that it is idle, and the result with the claim's release in one transaction
    claims = sum(e["event"] == "fleet.claimed" for h in ("d1", "d2") for e in events(tmp_path / f"{h}.log"))
    assert writes <= 4 * claims + 2 * 2, (writes, claims)  # and each host's first entry
    print(f"fleet writes: {writes} for {claims} claims ({len(results)} drills recorded) by 2 hosts in "
          f"{(datetime.now().astimezone() - start).total_seconds():.0f} s")
    assert {c for c, _ in results} == set(NAMES)  # the offsite cluster: never claimed without its credentials
    assert all(d.passed for _, d in results), [d.summary for _, d in results if not d.passed]
    by_claim = sorted(results, key=lambda r: r[1].claim or 0)  # claims are ordered by their revisions
    assert [c for c, _ in by_claim[:3]] == expected
    assert {d.host for _, d in results} == {"d1", "d2"}  # both hosts took their share
    for n in NAMES:
        mine = [d for c, d in results if c == n]
        for a, b in itertools.pairwise(mine):
            assert b.started_at >= a.finished_at, f"two drills of {n} at once: {a} {b}"
        edges = [start, *(d.finished_at for d in mine), max(d.finished_at for _, d in results)]
        gaps = [b - a for a, b in itertools.pairwise(edges)]
        assert max(gaps) <= timedelta(seconds=PERIOD), (n, gaps)  # a passed drill in every period of drill_every
    assert len({d.claim for _, d in results}) == len(results)  # one result a claim

    conf = fleet.drill_host(name, "viewer", tmp_path)
    status = opsd(conf, "fleet", "status", "--json")
    assert status.returncode == 1, status.stderr  # a cluster is overdue
    data = json.loads(status.stdout)
    text = json.dumps(data)
    assert "offsite" in text and all(n in text for n in NAMES)
    report = opsd(conf, "fleet", "report", "--month", start.strftime("%Y-%m"), "--format", "md")
    assert report.returncode == 0, report.stderr
    assert all(n in report.stdout for n in (*NAMES, "offsite"))
    state = _state(fleet.state_dir(name, "d1"))
    assert state.reachable and state.overdue == ["offsite"] and state.clusters == 4
    checked = {r["name"]: r for r in json.loads(opsd(conf, "check", "--json").stdout)["results"]}
    assert checked["fleet"]["status"] == "warning" and checked["fleet"]["details"]["overdue"] == ["offsite"]

    # fa's own opsd, after the fortnight: the drills that ran elsewhere come from its repository into its history
    fleet.publish(name, "fa", tmp_path)
    own = tmp_path / f"{name}-fa-.toml"
    drilled = [(d["host"], int(datetime.fromisoformat(d["started_at"]).timestamp()))
               for d in json.loads(opsd(own, "drill", "list", "--limit", "1000", "--json").stdout)
               if d["trigger"] == "fleet"]
    # every drill of fa in this fleet, once (fa's repository may also hold those of this module's other fleets)
    assert {(d.host, int(d.started_at.timestamp())) for c, d in results if c == "fa"} <= set(drilled)
    assert len(drilled) == len(set(drilled))
    res = opsd(own, "status")
    assert "this cluster drilled in time" in res.stdout, res.stdout
    fleet.publish(name, "fa", tmp_path, cluster="offsite", repository="offsite")
    res = opsd(tmp_path / f"{name}-fa-offsite.toml", "status")
    assert res.returncode == 1 and "THIS CLUSTER IS OVERDUE" in res.stdout, res.stdout + res.stderr


def _mine(f: Fleet, name: str, host: str) -> tuple[str, int] | None:
    return next(((c, rev) for c, (rev, claim) in _claims(f, name).items() if claim.host == host), None)


def _drilling(state_dir: Path) -> bool:
    """The drill host's copy exists (its restore has begun): a pause or a kill now lands mid-drill."""
    scratch = state_dir / "scratch"
    return scratch.is_dir() and any(scratch.iterdir())


def test_a_drill_host_killed_or_paused_mid_drill_loses_its_claim_and_never_records_as_its_owner(
        fleet: Fleet, tmp_path: Path) -> None:
    name = "faults"
    for n in NAMES:
        fleet.publish(name, n, tmp_path)
    c1, c2 = fleet.drill_host(name, "d1", tmp_path), fleet.drill_host(name, "d2", tmp_path)
    d1 = _daemon(c1, tmp_path / "d1.log")
    d2: subprocess.Popen[bytes] | None = None
    try:
        killed = wait_until(lambda: _mine(fleet, name, "d1"), timeout=60, what="d1 to claim a cluster")
        assert killed is not None
        wait_until(lambda: _drilling(fleet.state_dir(name, "d1")), timeout=60, what="d1's drill to begin")
        d1.kill()  # SIGKILL: no teardown, no revoke; the lease runs out after [fleet] ttl
        d1.wait()
        d2 = _daemon(c2, tmp_path / "d2.log")
        wait_until(lambda: any(c == killed[0] and d.host == "d2" for c, d in _results(fleet, name)), timeout=120,
                   what=f"d2 to drill {killed[0]} after d1's lease expired")
        d1 = _daemon(c1, tmp_path / "d1-again.log")
        wait_until(lambda: any(e["event"] == "copy.leftover" for e in events(tmp_path / "d1-again.log")),
                   timeout=60, what="d1's leftover copy removed at its restart")

        paused = wait_until(lambda: _mine(fleet, name, "d1"), timeout=90, what="d1 to claim again")
        assert paused is not None
        wait_until(lambda: _drilling(fleet.state_dir(name, "d1")), timeout=60, what="d1's second drill to begin")
        d1.send_signal(signal.SIGSTOP)  # the daemon alone: its lease runs out while its drill's commands go on
        wait_until(lambda: _mine(fleet, name, "d1") is None, timeout=30, what="d1's claim gone with its lease")
        d1.send_signal(signal.SIGCONT)
        wait_until(lambda: any(e["event"] == "fleet.claim_lost" for e in events(tmp_path / "d1-again.log")),
                   timeout=60, what="d1 to find its lease lost")
        wait_until(lambda: _state(fleet.state_dir(name, "d1")).lease_losses == 1, timeout=30,
                   what="the lease loss counted in fleet.json")
        resumed = datetime.now().astimezone()  # a lost lease stops one drill, never the host's next ones
        wait_until(lambda: any(d.host == "d1" and d.started_at > resumed for _, d in _results(fleet, name)),
                   timeout=150, what="d1 to drill and record again with a new lease")
    finally:
        for p in (d1, d2):
            if p is not None:
                _stop(p)
    results = _results(fleet, name)
    assert paused[1] not in {d.claim for _, d in results}  # nor the paused one's, although its drill went on
    assert len({d.claim for _, d in results}) == len(results)
    lost = [e for e in events(tmp_path / "d1-again.log") if e["event"] == "drill.finished"
            and "lost mid-drill" in str(e.get("error", ""))]
    assert lost, "the paused drill's run says its claim was lost"


def test_one_etcd_member_down_changes_nothing_quorum_lost_stops_claims_and_they_resume(
        fleet: Fleet, tmp_path: Path) -> None:
    name = "quorum"
    for n in NAMES:
        fleet.publish(name, n, tmp_path)
    conf = fleet.drill_host(name, "d1", tmp_path)
    log, state = tmp_path / "d1.log", fleet.state_dir(name, "d1")
    d1 = _daemon(conf, log)
    try:
        fleet.etcd.kill(0)
        wait_until(lambda: len(_results(fleet, name)) >= 2, timeout=120, what="drills with one member down")
        fleet.etcd.kill(1)  # no quorum
        wait_until(lambda: not _state(state).reachable, timeout=60, what="the drill host to find etcd unreachable")
        refused = wait_until(lambda: next((i for i, e in enumerate(events(log)) if e["event"] == "drill.finished"
                                           and "no drill starts without a claim" in str(e.get("error", ""))), None),
                             timeout=60, what="a drill refused for want of a claim")
        raised = [e for e in events(log) if e["event"] == "alert.raised" and e.get("alert") == "fleet.unreachable"]
        assert raised, "the fleet's unreachable alert fired"
        checked = {r["name"]: r for r in json.loads(opsd(conf, "check", "--json").stdout)["results"]}
        assert checked["fleet"]["status"] == "critical", checked["fleet"]
        assert "no drill starts without a claim" in checked["fleet"]["message"]
        before = len(events(log))
        fleet.etcd.start_member(0)
        fleet.etcd.start_member(1)
        back = datetime.now().astimezone()
        wait_until(lambda: _state(state).reachable, timeout=60, what="the drill host to find etcd again")
        wait_until(lambda: any(d.started_at > back for _, d in _results(fleet, name)), timeout=120,
                   what="claims to resume by themselves")
    finally:
        _stop(d1)
        for i in (0, 1):
            fleet.etcd.start_member(i)  # the next test finds the whole cluster (a running member is left alone)
    # from the first refusal (a drill claimed before the loss has ended: one drill job at a time) to the return:
    # the drill job ran every 2 s, and not one of its runs began a drill
    began = [e for e in events(log)[refused:before] if e["event"] in ("drill.progress", "fleet.claimed")]
    assert not began, began[:3]
