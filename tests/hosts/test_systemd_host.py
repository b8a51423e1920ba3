"""opsd on a real host: a fresh Debian 12 booted by its own systemd, Debian's cluster 15/main, opsd installed by
playbooks/install.yml with a local connection (docs/install.md, "With the playbook"), the shipped unit unchanged.
The host reaches its S3 repository only over its own network link (198.18.x), which a test may slow down.

Each test starts from a running daemon and leaves one (pytest-randomly shuffles them)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from opsd_sandbox import dbhost, hosts, net
from opsd_sandbox.stack import S3_NAME, Sandbox
from tests.hosts.conftest import new_lan
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

T = TypeVar("T")
CONF = "/etc/opsd/opsd.toml"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "install.md"


@dataclass
class Db:
    host: hosts.Host
    lan: net.Lan
    node: net.Node
    sb: Sandbox
    first: dbhost.Recap
    second: dbhost.Recap
    scheduled: dict[str, object] | None = None  # what the first scheduled drill, check and verify left

    def sh(self, script: str, **kw: object) -> str:
        return self.host.run(script, **kw).stdout  # type: ignore[arg-type]

    def unit(self, *props: str) -> dict[str, str]:
        return self.host.unit("opsd", *props)

    def cursor(self) -> str:
        """A journal cursor: :meth:`events` after it are what the test made happen."""
        out = self.sh("journalctl -u opsd -n 0 --show-cursor --no-pager")
        return out.strip().rsplit("cursor: ", 1)[-1]

    def lines(self, after: str) -> list[dict[str, str]]:
        out = self.sh(f"journalctl -u opsd --after-cursor='{after}' -o json --no-pager")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def events(self, after: str, name: str) -> list[dict[str, str]]:
        """opsd's journal lines after ``after`` whose event is ``name``."""
        return [e for e in self.lines(after) if str(e.get("MESSAGE", "")).split(" ", 1)[0] == name]

    def status(self) -> dict[str, dict[str, object]]:
        """``opsd status --json`` as a DBA runs it (root, sudo-like), by job."""
        res = self.host.run("opsd status --json", check=False)
        return {row["job"]: row for row in json.loads(res.stdout)}

    def set_conf(self, section: str, key: str, value: str) -> None:
        """Change one key of /etc/opsd/opsd.toml (as a DBA editing it would)."""
        self.sh(f"sed -i '/^\\[{section}\\]/,/^\\[/ s|^{key} = .*|{key} = \"{value}\"|' {CONF}")

    def ensure_running(self) -> None:
        if self.unit("ActiveState")["ActiveState"] != "active":
            self.sh("systemctl reset-failed opsd; systemctl start opsd")
        assert self.unit("ActiveState", "SubState") == {"ActiveState": "active", "SubState": "running"}


def wait(what: str, cond: Callable[[], T], timeout: float, step: float = 1.0) -> T:
    return wait_until(cond, timeout=timeout, what=what, interval=step)


@pytest.fixture(scope="module")
def db(host_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    lan = new_lan()
    sb = Sandbox.create(prefix="opsd-test-host-", s3_also_listen=(lan.gateway,))
    try:
        sb.up()
        node = lan.add("db1")
        handoff = dbhost.handoff(tmp_path_factory.mktemp("handoff"), sb, opsd_shutdown_timeout="5s")
        with hosts.Host.boot("db1", host_root, node=node, binds=dbhost.binds(handoff),
                             hosts={S3_NAME: lan.gateway}) as host:
            first = dbhost.install(host)
            second = dbhost.install(host)
            d = Db(host, lan, node, sb, first, second)
            wait("the catch-up full backup of a fresh host", lambda: _last(d, "backup-full") in ("ok", "failed"),
                 180, 2)
            d.scheduled = _first_scheduled_runs(d)  # on the fresh host, before any test stops or kills the daemon
            yield d
    finally:
        sb.down(remove=True)
        lan.close()


def _last(d: Db, job: str) -> str:
    last = d.status().get(job, {}).get("last")
    return str(last["outcome"]) if isinstance(last, dict) else ""


def test_the_playbook_installs_a_fresh_host_and_a_second_run_changes_nothing(db: Db) -> None:
    assert db.first.failed == 0 and db.first.changed >= 8, db.first.output[-3000:]
    assert db.second.changed == 0, f"changed on the second run: {db.second.changed_tasks()}"
    assert db.sh("stat -c '%U:%G %a' /etc/pgbackrest/pgbackrest.conf").strip() == "root:postgres 640"
    assert "opsd-sandbox-secret" not in db.first.output + db.second.output  # no_log: never printed
    # the secret reached pgBackRest through the file alone: not in the unit's environment, not in argv
    assert "secret" not in db.sh("systemctl show opsd -p Environment").lower()
    assert db.sh("systemctl is-enabled opsd").strip() == "enabled"
    assert re.search(r"^archive_mode\s*\|\s*on", db.sh("runuser -u postgres -- psql -XAt -F '|' -c "
                                                       "\"select name, setting from pg_settings where name = "
                                                       "'archive_mode'\""), re.M)


def test_active_only_after_ready_as_postgres_without_capabilities_and_readable_in_the_journal(db: Db) -> None:
    db.ensure_running()
    before = db.cursor()
    db.sh("systemctl restart opsd")
    lines = db.lines(before)
    msgs = [str(e["MESSAGE"]) for e in lines]
    started = next(i for i, m in enumerate(msgs) if m.startswith("daemon.started"))
    ready = next(i for i, m in enumerate(msgs) if m.startswith("Started opsd.service"))
    assert started < ready, msgs  # Type=notify: active only after READY=1, sent once the scheduler runs
    assert db.unit("StatusText")["StatusText"].startswith("scheduler running")
    ours = [e for e in lines if e.get("SYSLOG_IDENTIFIER") == "opsd"]
    assert ours and all(not str(e["MESSAGE"]).startswith(("{", "<")) for e in ours), msgs  # no JSON, prefix read
    assert {e["PRIORITY"] for e in ours if str(e["MESSAGE"]).startswith("daemon.started")} == {"6"}

    pid = db.unit("MainPID")["MainPID"]
    status = db.sh(f"cat /proc/{pid}/status")
    uid = db.sh("id -u postgres").strip()
    assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.M), status
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert re.search(rf"^{cap}:\s+0+$", status, re.M), f"{cap} not empty: {status}"
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M) and re.search(r"^Seccomp:\s+2$", status, re.M)


JOBS = ("drill", "check", "verify")


def _first_scheduled_runs(db: Db) -> dict[str, object]:
    """drill, check and verify set to every 10 s and reloaded; what each one's first scheduled run left (the
    ``opsd status`` rows, the journal cursor before, the journal after); the schedules are set back after."""
    since = {j: _run_id(db.status()[j]["last"]) for j in JOBS}
    for job in JOBS:
        db.set_conf("schedule", job, "10s")
    before = db.cursor()
    db.sh("systemctl reload opsd")
    try:
        rows = wait("drill, check and verify run by the daemon", lambda: _done_since(db.status(), since), 240, 3)
    finally:
        for job, expr in (("drill", "0 3 * * 0"), ("check", "*/30 * * * *"), ("verify", "0 5 * * 6")):
            db.set_conf("schedule", job, expr)
        db.sh("systemctl reload opsd")
        wait("no job running", lambda: all(_last(db, j) != "running" for j in JOBS), 120, 2)
    return {"since": since, "rows": rows, "before": before, "journal": db.sh("journalctl -u opsd -n 80 -o cat")}


def test_scheduled_backup_drill_check_and_verify_succeed_under_every_hardening_line(db: Db) -> None:
    db.ensure_running()
    assert db.scheduled is not None
    since, rows = db.scheduled["since"], db.scheduled["rows"]
    assert isinstance(since, dict) and isinstance(rows, dict)
    assert rows["backup-full"]["last_ok"]["trigger"] == "catch-up"  # the full backup missed before the first start
    ok = {j: _run_id(rows[j]["last_ok"]) > since[j] for j in JOBS}
    assert all(ok.values()), (ok, db.scheduled["journal"])
    assert all(rows[j]["last_ok"]["trigger"] == "schedule" for j in JOBS)
    before = str(db.scheduled["before"])
    assert db.events(before, "config.reloaded") and db.events(before, "drill.finished")
    assert "reception only permitted" not in db.sh("journalctl -u opsd -o cat")  # no child spoke sd_notify
    # the drill's copy is gone: no scratch instance, no postgres of it, nothing recorded as still there
    assert "scratch" not in db.sh("ps -eo args")
    assert json.loads(db.sh("opsd scratch list --json")) == []


def _done_since(rows: dict[str, dict[str, object]], since: dict[str, int]) -> dict[str, dict[str, object]] | None:
    """``rows`` (one ``opsd status`` snapshot) once every job in ``since`` has finished a run after it."""
    for job, before in since.items():
        last, last_ok = rows[job]["last"], rows[job]["last_ok"]
        finished = _run_id(last) > before and isinstance(last, dict) and last["outcome"] != "running"
        if not (finished or _run_id(last_ok) > before):
            return None
    return rows


def _run_id(row: object) -> int:
    return int(row["id"]) if isinstance(row, dict) else 0


def test_reload_applies_a_valid_change_and_keeps_the_old_config_on_an_invalid_one(db: Db) -> None:
    db.ensure_running()
    pid = db.unit("MainPID")["MainPID"]
    saved = db.sh(f"cat {CONF}")
    before = db.cursor()
    try:
        db.set_conf("schedule", "diff", "0 14 * * *")
        db.sh("systemctl reload opsd")
        ok = wait("config.reloaded", lambda: db.events(before, "config.reloaded"), 20)
        assert "T14:00:00" in json.dumps(ok)
        middle = db.cursor()
        db.set_conf("schedule", "full", "every blue moon")
        db.sh("systemctl reload opsd")
        rejected = wait("config.reload_rejected", lambda: db.events(middle, "config.reload_rejected"), 20)
        assert rejected[0]["PRIORITY"] == "3" and "schedule.full" in rejected[0]["MESSAGE"]
        assert not db.events(middle, "config.reloaded")  # the old config (diff at 14:00) still runs
        assert db.unit("MainPID", "ActiveState") == {"MainPID": pid, "ActiveState": "active"}
    finally:
        db.host.run(f"cat > {CONF}", input=saved)
        db.sh("systemctl reload opsd")


def test_the_watchdog_is_fed_and_a_hung_daemon_is_restarted_by_systemd(db: Db) -> None:
    db.ensure_running()
    first = int(db.unit("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    time.sleep(2)
    assert int(db.unit("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]) > first
    props = db.unit("MainPID", "NRestarts")
    db.sh("systemctl kill -s STOP --kill-whom=main opsd")
    # WatchdogSec=60s, then SIGABRT, then RestartSec=30s: the shipped unit's own timings
    wait("a restart after the watchdog fired", lambda: db.unit("NRestarts")["NRestarts"] != props["NRestarts"], 150, 5)
    wait("active again", lambda: db.unit("ActiveState")["ActiveState"] == "active", 60, 2)
    assert db.unit("MainPID")["MainPID"] != props["MainPID"]
    assert "Watchdog timeout" in db.sh("journalctl -u opsd -n 40 -o cat")


def _procs(db: Db, pattern: str) -> list[str]:
    return [line for line in db.sh("ps -eo pid,args").splitlines() if re.search(pattern, line)]


@pytest.fixture
def a_slow_running_backup(db: Db) -> Iterator[str]:
    """A scheduled full backup running over a slow link to S3 (so that it is still running when the test acts);
    yields a journal cursor from before it; the link and the schedule are restored after."""
    db.ensure_running()
    db.lan.shape(db.node, rate_kbit=600)
    before = db.cursor()
    db.set_conf("schedule", "full", "3s")
    db.sh("systemctl reload opsd")
    try:
        wait("a scheduled full backup running", lambda: _last(db, "backup-full") == "running"
             and _procs(db, r"pgbackrest .*backup"), 60)
        db.set_conf("schedule", "full", "0 1 * * *")  # the next start must not take another at once
        yield before
    finally:
        db.lan.shape(db.node)
        db.set_conf("schedule", "full", "0 1 * * *")
        db.ensure_running()


def test_stop_during_a_backup_cancels_it_after_shutdown_timeout_and_the_next_start_is_clean(
        db: Db, a_slow_running_backup: str) -> None:
    t0 = time.monotonic()
    db.sh("systemctl stop opsd", timeout=120)
    took = time.monotonic() - t0
    assert not _procs(db, r"pgbackrest"), "a pgBackRest process outlived the daemon"
    assert db.unit("ActiveState", "Result") == {"ActiveState": "inactive", "Result": "success"}
    row = db.status()["backup-full"]["last"]
    assert isinstance(row, dict) and row["outcome"] == "interrupted", row
    assert db.events(a_slow_running_backup, "daemon.cancelling")  # [daemon] shutdown_timeout = 5s, then cancelled
    assert took < 60, f"the stop took {took:.0f}s with a 5s shutdown_timeout"
    after_stop = db.cursor()
    db.sh("systemctl start opsd")
    assert not db.events(after_stop, "history.interrupted_runs")  # recorded at the stop: nothing stale to find
    assert json.loads(db.sh("opsd backup --type full --json"))["type"] == "full"  # the repository is fine


def test_killed_mid_backup_the_interrupted_run_is_found_at_the_next_start_and_the_next_backup_works(
        db: Db, a_slow_running_backup: str) -> None:
    run = db.status()["backup-full"]["last"]
    assert isinstance(run, dict)
    db.sh("systemctl kill -s KILL opsd")  # every process of the unit, pgBackRest's too
    wait("the unit failed", lambda: db.unit("Result")["Result"] == "signal", 30)
    after_kill = db.cursor()
    db.sh("systemctl start opsd")  # before Restart= would (RestartSec=30s)
    found = wait("history.interrupted_runs", lambda: db.events(after_kill, "history.interrupted_runs"), 30)
    assert "count=1" in str(found[0]["MESSAGE"])
    rows = db.status()
    assert rows["backup-full"]["last"]["id"] == run["id"]  # type: ignore[index]
    assert rows["backup-full"]["last"]["outcome"] == "interrupted"  # type: ignore[index]
    db.lan.shape(db.node)
    res = db.host.run("opsd backup --type full --json", check=False, timeout=300)  # pgBackRest's lock: stale
    assert res.returncode == 0, res.stderr


def test_stop_during_a_drill_tears_it_down_at_once(db: Db) -> None:
    db.ensure_running()
    before = db.cursor()
    db.set_conf("schedule", "drill", "3s")
    db.sh("systemctl reload opsd")
    try:
        wait("a drill running", lambda: _last(db, "drill") == "running", 60, 0.5)
        db.set_conf("schedule", "drill", "0 3 * * 0")
        db.sh("systemctl stop opsd", timeout=120)
    finally:
        db.set_conf("schedule", "drill", "0 3 * * 0")
    assert db.events(before, "daemon.cancelling_drill")
    assert not _procs(db, r"pgbackrest|scratch"), _procs(db, r"pgbackrest|scratch")
    assert db.status()["drill"]["last"]["outcome"] == "interrupted"  # type: ignore[index]
    assert json.loads(db.sh("opsd scratch list --json")) == []
    left = db.sh("ls -A /var/lib/opsd/scratch").split()
    assert set(left) <= {"work"}, left  # work/ keeps the drills' logs and lock; no copy, no copy's tablespaces
    after = db.cursor()
    db.ensure_running()
    assert not db.events(after, "history.interrupted_runs")


def test_systemd_analyze_security_rates_the_unit_at_most_3_and_docs_explain_every_exposure(db: Db) -> None:
    out = db.sh("systemd-analyze security opsd --no-pager")
    level = float(re.search(r"Overall exposure level for opsd\.service: (\d+\.\d+)", out)[1])  # type: ignore[index]
    assert level <= 3.0, out
    explained = DOCS.read_text()
    open_ = [line.split()[1] for line in out.splitlines() if line.startswith("✗")]
    assert open_, out  # some exposure is always left (e.g. AF_INET for S3): each one is named in the docs
    missing = [name for name in open_ if f"`{name}`" not in explained]
    assert not missing, f"exposures not explained in docs/install.md: {missing}"
