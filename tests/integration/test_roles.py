"""One opsd.toml on both nodes of a streaming pair (issue 15, part 1), on a real standby made with
``pg_basebackup -R``: the primary's backup lands, the standby's is a skip recorded with its role (exit 0, no
alert), a drill or a heartbeat asked of the standby is a skip too; with ``[patroni] url`` Patroni's answer
decides (a fake REST API here), and a role that cannot be decided writes nothing to the repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsd import settings as settings_mod
from opsd.actions import alerts
from opsd.adapters.stores.runs import History
from opsd.context import build
from opsd.core.records.base import Skipped
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, port_open, run, stop_process
from tests.conftest import REPO, opsd, serve_get
from tests.faults.helpers import start_copying
from tests.integration.helpers import PG_BIN, Cluster, wait_until

pytestmark = pytest.mark.integration


class Standby:
    """A streaming standby of ``primary`` with the same stanza: its own port, data directory, pgbackrest.conf
    (pg1 = this node) and state directory, as the second node of a pair would have."""

    def __init__(self, primary: Cluster) -> None:
        sb = primary.sb
        self.sb, self.port, self.pgdata = sb, free_port(), sb.root / f"{primary.name}-standby-data"
        self.state = sb.root / f"{primary.name}-standby-state"
        mkdir_pg(self.pgdata, 0o700)
        run(as_pg([str(PG_BIN / "pg_basebackup"), "-h", str(sb.socket_dir), "-p", str(primary.port), "-U",
                   "postgres", "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast"]), timeout=300)
        with (self.pgdata / "postgresql.conf").open("a") as f:
            f.write(f"port = {self.port}\n")
        self.pgbr = sb.write_pgbackrest_conf(path=sb.root / f"pgbackrest-{primary.name}-standby.conf",
                                             stanza=primary.name, pg_path=self.pgdata, pg_port=self.port)
        auto = self.pgdata / "postgresql.auto.conf"  # on real hosts the paths are the same on both nodes:
        auto.write_text(auto.read_text().replace(str(primary.pgbr), str(self.pgbr)))  # archive with this one
        mkdir_pg(self.state, 0o750)
        self.conf = sb.root / f"opsd-{primary.name}-standby.toml"
        self.write_conf()
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-l", str(sb.root / "pglog" / "standby.log"),
                   "-w", "start"]))

    def write_conf(self, extra: str = "") -> None:
        self.conf.write_text(self.sb.opsd_toml(pgbackrest_conf=self.pgbr, stanza=self.pgbr.stem.split("-")[1],
                                               data_dir=self.pgdata, pg_port=self.port, state_dir=self.state,
                                               extra=extra))
        self.conf.chmod(0o644)

    def psql(self, sql: str) -> str:
        return run(as_pg([str(PG_BIN / "psql"), "-h", str(self.sb.socket_dir), "-p", str(self.port), "-XAtc",
                          sql])).stdout.strip()

    def promote(self) -> None:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-w", "promote"]))

    def stop(self) -> None:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "immediate", "-w", "stop"]), check=False)


@pytest.fixture(scope="module")
def pair(stack: Sandbox) -> Iterator[tuple[Cluster, Standby]]:
    primary = Cluster(stack, "pair")
    primary.initdb()
    standby = None
    try:
        assert opsd(primary.conf, "setup", "--restart").returncode == 0
        standby = Standby(primary)
        yield primary, standby
    finally:
        if standby is not None:
            standby.stop()
        primary.stop_quietly()


@pytest.fixture
def patroni() -> Iterator[tuple[str, dict[str, Any]]]:
    """A stand-in for Patroni's REST API: GET /patroni answers what the test sets (this node is "node1"), and
    GET /cluster says who holds the leader key: this node while it says primary, else "node2"."""
    answer: dict[str, Any] = {"role": "primary", "state": "running", "pause": False, "patroni": {"name": "node1"}}

    def reply(path: str) -> tuple[int, bytes]:
        if path == "/patroni":
            return 200, json.dumps(answer).encode()
        if path == "/cluster":
            lead = answer["role"] in ("primary", "master")
            members = [{"name": "node1", "role": "leader" if lead else "replica", "state": "running"},
                       {"name": "node2", "role": "replica" if lead else "leader", "state": "running"}]
            return 200, json.dumps({"members": members}).encode()
        return 404, b"{}"

    with serve_get(reply) as url:
        yield url, answer


def _last(state: Path, job: str) -> Any:
    return History(state, "postgres").last(job)


def test_one_config_on_both_nodes_one_backup_lands(pair: tuple[Cluster, Standby]) -> None:
    primary, standby = pair
    before = primary.labels()
    res = opsd(standby.conf, "backup", "--type", "full", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["role"] == "standby" and "runs on the primary" in out["reason"], out
    run_ = _last(standby.state, "backup-full")
    assert run_.outcome == "skipped" and isinstance(run_.details, Skipped) and run_.details.role == "standby"
    assert alerts.firing(build(settings_mod.load(str(standby.conf)))) == []  # a skip raises no alert
    assert primary.labels() == before  # the standby wrote nothing to the repository

    res = opsd(primary.conf, "backup", "--type", "full")
    assert res.returncode == 0, res.stderr[-2000:]
    assert set(primary.labels()) - set(before), before  # a new backup (retention may expire the oldest)

    for args in (["drill", "run", "--target", "latest"], ["drill", "heartbeat"], ["verify"]):
        res = opsd(standby.conf, *args)
        assert res.returncode == 0 and "skipped: this node is a standby" in res.stdout, (args, res.stderr[-1500:])
    assert not (standby.state / "scratch").exists() or not any((standby.state / "scratch").glob("drill-*"))


def test_patroni_decides_and_an_undecided_role_writes_nothing(pair: tuple[Cluster, Standby],
                                                              patroni: tuple[str, dict[str, Any]]) -> None:
    primary, _standby = pair
    url, answer = patroni
    conf = primary.write_conf(primary.sb.root / "opsd-pair-patroni.toml", extra=f'\n[patroni]\nurl = "{url}"\n')
    before = primary.labels()
    answer["role"] = "replica"  # Patroni says this node no longer leads: its backup is a skip
    res = opsd(conf, "backup", "--type", "full")
    assert res.returncode == 0 and "standby (Patroni: replica, running)" in res.stdout, res.stdout + res.stderr
    answer.update(role="primary", state="starting")
    res = opsd(conf, "backup", "--type", "full")
    assert res.returncode == 0 and "role unknown (Patroni: primary, starting)" in res.stdout, res.stdout
    dead = primary.write_conf(primary.sb.root / "opsd-pair-dead.toml",
                              extra=f'\n[patroni]\nurl = "http://127.0.0.1:{free_port()}"\n')
    res = opsd(dead, "backup", "--type", "full")
    assert res.returncode == 0 and "role unknown" in res.stdout and "did not answer" in res.stdout, res.stdout
    assert primary.labels() == before
    answer.update(role="primary", state="running")
    assert opsd(conf, "backup", "--type", "incr").returncode == 0
    assert set(primary.labels()) - set(before), before  # a new backup (retention may expire the oldest)


def test_a_backup_on_a_node_that_loses_the_lead_is_stopped(pair: tuple[Cluster, Standby],
                                                          patroni: tuple[str, dict[str, Any]]) -> None:
    primary, _standby = pair
    url, answer = patroni
    conf = primary.write_conf(primary.sb.root / "opsd-pair-watch.toml",
                              extra=f'\n[patroni]\nurl = "{url}"\ncheck_every = "1s"\n')
    primary.psql("create table if not exists bulk as select g, repeat(md5(g::text), 12) as pad "
                 "from generate_series(1, 300000) g")  # a backup of some seconds
    before = primary.labels()
    proc = start_copying(primary.sb.root / "pgbr" / "log" / f"{primary.name}-backup.log", conf)
    answer["role"] = "replica"  # Patroni gave the leader lock away while the backup copies files
    _out, err = proc.communicate(timeout=300)
    answer["role"] = "primary"
    assert proc.returncode == 1, err[-2000:]
    assert "backup stopped: this node lost the leader role during the backup (Patroni: replica" in err, err[-2000:]
    run_ = History(primary.state, "postgres").last("backup-full")
    assert run_ is not None and run_.outcome == "interrupted", run_
    assert primary.labels() == before  # nothing partial is listed
    assert opsd(conf, "backup", "--type", "full").returncode == 0  # leading again: the next one lands


def test_drills_moved_to_the_standby_spare_the_primary(pair: tuple[Cluster, Standby]) -> None:
    primary, standby = pair
    conf = primary.write_conf(primary.sb.root / "opsd-pair-moved.toml")
    conf.write_text(conf.read_text().replace("[opsd]\n", '[opsd]\njobs_on_standby = ["drill"]\n', 1))
    res = opsd(conf, "drill", "run", "--target", "latest")
    assert res.returncode == 0 and "runs on the standbys" in res.stdout, res.stdout + res.stderr[-1000:]
    standby.conf.write_text(standby.conf.read_text().replace("[opsd]\n", '[opsd]\njobs_on_standby = ["drill"]\n', 1))
    if not primary.labels():  # the tests of this module run in any order
        assert opsd(primary.conf, "backup", "--type", "full").returncode == 0
    res = opsd(standby.conf, "drill", "run", "--target", "latest", "--json", timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["passed"]


def _timelines(conf: Path) -> dict[str, Any]:
    res = opsd(conf, "check", "--json")
    return {r["name"]: r for r in json.loads(res.stdout)["results"]}["archive.timelines"]  # type: ignore[no-any-return]


def test_after_a_failover_a_backup_at_once_and_the_split_brain_guard(stack: Sandbox) -> None:
    """A failover's new primary has not checkpointed on its new timeline yet: pgBackRest would refuse ('WAL
    timeline 2 does not match pg_control timeline 1'); opsd checkpoints first and the backup lands. Then the
    old primary comes back on its own and archives on timeline 1 again: check goes critical, naming both."""
    old = Cluster(stack, "promo")
    old.initdb()
    new = None
    try:
        assert opsd(old.conf, "setup", "--restart").returncode == 0
        assert opsd(old.conf, "backup", "--type", "full").returncode == 0
        old.psql("alter system set checkpoint_timeout = '1h'")  # the checkpoint after the promotion is spread
        old.psql("select pg_reload_conf()")  # over most of an hour: dirty pages keep it from ending soon
        old.psql("create table stock as select g as id, md5(g::text) as ref from generate_series(1, 200000) g")
        new = Standby(old)
        old.psql("update stock set ref = ref || 'x'")  # replayed by the standby: dirty buffers there
        lsn = old.psql("select pg_current_wal_lsn()")
        wait_until(lambda: new.psql(f"select pg_last_wal_replay_lsn() >= '{lsn}'") == "t", timeout=60,
                   what="the standby to replay the update")
        old.stop_quietly()  # the primary is lost
        new.promote()
        assert new.psql("select timeline_id from pg_control_checkpoint()") == "1"  # not checkpointed yet
        res = opsd(new.conf, "backup", "--type", "full")
        assert res.returncode == 0, res.stderr[-2000:]
        assert "backup.checkpoint" in res.stderr and "promoted to timeline 2" in res.stderr
        assert len(old.labels()) == 2
        ok = _timelines(new.conf)
        assert ok["status"] == "ok" and "1 -> 2" in ok["message"], ok
        [sw] = json.loads(opsd(new.conf, "window", "--json").stdout)["switches"]
        assert (sw["timeline"], sw["parent"]) == (2, 1) and sw["lsn"] and sw["at"], sw  # where and when
        old.ctl("start")  # not rewound, not a standby: a lone primary on timeline 1
        old.psql("insert into stock values (0, 'lone'); select pg_switch_wal()")
        bad = wait_until(lambda: (t := _timelines(new.conf))["status"] == "critical" and t, timeout=90,
                         what="check to see timeline 1 archived after the switch")
        assert "split brain: timeline 1 is still archived after timeline 2 branched off it" in bad["message"]
        assert opsd(new.conf, "check").returncode == 1
    finally:
        if new is not None:
            new.stop()
        old.stop_quietly()


def test_backup_from_the_standby(pair: tuple[Cluster, Standby]) -> None:
    """``[pgbackrest] backup_standby``: the primary's backup copies the files from the standby (pgBackRest's
    backup-standby, pg2 in pgbackrest.conf); without a pg2, a one-line config error before anything starts."""
    primary, standby = pair
    conf = primary.write_conf(primary.sb.root / "opsd-pair-from-standby.toml")
    conf.write_text(conf.read_text().replace("[pgbackrest]\n", "[pgbackrest]\nbackup_standby = true\n", 1))
    before = primary.labels()
    res = opsd(conf, "backup", "--type", "full")
    assert res.returncode == 3, res.stdout + res.stderr[-1500:]
    assert "backup_standby = true, but it names 1 node(s) for stanza pair (pg1): add the standby as pg2" in res.stderr
    assert "Traceback" not in res.stderr and primary.labels() == before
    both = primary.sb.root / "pgbackrest-pair-both.conf"
    both.write_text(primary.pgbr.read_text() + f"pg2-path={standby.pgdata}\npg2-port={standby.port}\n"
                    f"pg2-socket-path={primary.sb.socket_dir}\npg2-user=postgres\n")
    shutil.copymode(primary.pgbr, both)
    shutil.chown(both, "root", "postgres")
    conf.write_text(conf.read_text().replace(str(primary.pgbr), str(both)))
    res = opsd(conf, "backup", "--type", "full", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert set(primary.labels()) - set(before), before  # a new backup (retention may expire the oldest)
    assert "wait for replay on the standby to reach" in res.stderr, res.stderr[-3000:]  # pgBackRest's own word
    standby_conf = standby.conf.read_text()
    standby.conf.write_text(standby_conf.replace("[pgbackrest]\n", "[pgbackrest]\nbackup_standby = true\n", 1))
    try:  # the standby's opsd still skips: the primary starts and stops a backup, even one read from a standby
        res = opsd(standby.conf, "backup", "--type", "full")
        assert res.returncode == 0 and "skipped: this node is a standby" in res.stdout, res.stdout + res.stderr
    finally:
        standby.conf.write_text(standby_conf)


def _render_nodes_conf(me: str, nodes: dict[str, dict[str, Any]], common: dict[str, Any]) -> str:
    """The playbook's pgbackrest-nodes.conf.j2 as Ansible would render it for host ``me``."""
    from jinja2 import Environment, FileSystemLoader

    env = Environment(loader=FileSystemLoader(REPO / "playbooks" / "templates"), keep_trailing_newline=True,
                      trim_blocks=True)  # Ansible's template module trims blocks too
    return env.get_template("pgbackrest-nodes.conf.j2").render(
        ansible_managed="Ansible managed", inventory_hostname=me, opsd_pgbackrest_nodes=list(nodes),
        hostvars=nodes, **{**common, **nodes[me]})


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif line.strip() and not line.startswith("#"):
            out.setdefault(current, []).append(line)
    return out


def test_backup_from_the_standby_over_pgbackrests_tls_server(pair: tuple[Cluster, Standby]) -> None:
    """What the playbook sets up for backup_standby: the nodes listed as pg1..pgN, the other node over
    pgBackRest's TLS server (pgbackrest server on the standby, client certificate checked by CN). The
    template is rendered as Ansible would; the backup reads the standby through the server."""
    primary, standby = pair
    sb = primary.sb
    tls = mkdir_pg(sb.root / "pgbr-tls", 0o750)
    crt, key = sb.server_key_for_pg()
    client_crt, client_key = sb.client_cert("opsd-client")
    for src, name in ((crt, "server.crt"), (key, "server.key"), (sb.ca_file, "ca.crt"), (client_crt, "client.crt"),
                      (client_key, "client.key")):
        shutil.copy(src, tls / name)
        shutil.chown(tls / name, "postgres", "postgres")
        (tls / name).chmod(0o600)
    port = free_port()
    nodes = {"primary": {"opsd_pg_data_dir": str(primary.pgdata), "opsd_pg_port": primary.port},
             "standby": {"opsd_pg_data_dir": str(standby.pgdata), "opsd_pg_port": standby.port,
                         "opsd_pgbackrest_address": "localhost"}}
    common = {"opsd_stanza": "pair", "opsd_pgbackrest_tls_dir": str(tls), "opsd_pgbackrest_tls_port": port,
              "opsd_pgbackrest_tls_listen": "127.0.0.1", "opsd_pgbackrest_tls_client_cn": "opsd-client",
              "opsd_pg_socket_path": str(sb.socket_dir)}
    for n in nodes.values():
        n["opsd_pg_socket_path"] = str(sb.socket_dir)
    main = _sections(primary.pgbr.read_text())["global"]  # the DBA's file: repository, logs
    mine = _sections(_render_nodes_conf("primary", nodes, common))
    assert "pg2-host=localhost" in mine["pair"] and "pg2-host-type=tls" in mine["pair"], mine
    client = sb.root / "pgbackrest-pair-tls.conf"
    client.write_text("\n".join(["[global]", *main, *mine["global"], "[pair]", *mine["pair"], ""]))
    server = sb.root / "pgbackrest-pair-tls-server.conf"
    theirs = _sections(_render_nodes_conf("standby", nodes, common))
    server.write_text("\n".join(["[global]", *[x for x in main if x.startswith(("log-", "lock-"))],
                                 *theirs["global"], ""]))
    for f in (client, server):
        shutil.chown(f, "root", "postgres")
        f.chmod(0o640)
    proc = subprocess.Popen(as_pg(["pgbackrest", f"--config={server}", "server"]), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=(sb.root / "pgbackrest-server.log").open("ab"))
    try:
        wait_until(lambda: port_open(port), timeout=30, what="pgBackRest's TLS server")
        conf = primary.write_conf(sb.root / "opsd-pair-tls.toml")
        conf.write_text(conf.read_text().replace(str(primary.pgbr), str(client))
                        .replace("[pgbackrest]\n", "[pgbackrest]\nbackup_standby = true\n", 1))
        before = primary.labels()
        res = opsd(conf, "backup", "--type", "full", timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr[-3000:]
        assert "wait for replay on the standby to reach" in res.stderr and "--pg2-host-type=tls" in res.stderr
        assert set(primary.labels()) - set(before), before  # a new backup (retention may expire the oldest)
    finally:
        stop_process(proc)
