"""A network that can fail (issue 26, part 3): the primary, a streaming standby, a drill host and the S3 endpoint
on test hosts of their own (network namespaces on one LAN, opsd_sandbox/netstack.py), each reaching the others only
over its veth link. Faults loopback cannot make: a link cut (packets lost, not refused: the peer sees a timeout)
and a slow, lossy link. Each fault ends with nothing lost and a clear record (docs/network-faults.md).

One layout per module: every test heals what it broke (also when it fails) and leaves a full backup behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opsd import settings as settings_mod
from opsd.actions import alerts
from opsd.adapters.pgbackrest import parse_repo_ls
from opsd.adapters.stores.runs import History
from opsd.context import build
from opsd.core.wal import parse_segment, runs_and_gaps
from opsd_sandbox.net import Lan
from opsd_sandbox.netstack import PGBR_TIMEOUTS, STANDBY_NAME, NetStack
from opsd_sandbox.procs import free_port, under
from opsd_sandbox.stack import S3_NAME
from tests.conftest import REPO, assert_documented
from tests.faults.helpers import ready_count, wait_drained
from tests.hosts.conftest import new_lan
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

IO_TIMEOUT = float(PGBR_TIMEOUTS["io-timeout"])


@pytest.fixture(scope="module")
def net() -> Iterator[tuple[Lan, NetStack]]:
    lan = new_lan()
    st = NetStack(lan)
    try:
        st.up()
        st.psql("primary", "create table orders as select g as id, md5(g::text) || md5((g * 7)::text) as ref "
                           "from generate_series(1, 150000) g")
        res = _opsd(st, "primary", "backup", "--type", "full")
        assert res.returncode == 0, res.stderr[-2000:]
        yield lan, st
    finally:
        st.down()
        lan.close()
        st.remove()


@pytest.fixture
def healed(net: tuple[Lan, NetStack]) -> Iterator[tuple[Lan, NetStack]]:
    """Every link up and clean again after the test, whatever it did."""
    lan, st = net
    try:
        yield lan, st
    finally:
        for node in st.nodes.values():
            lan.heal(node)
            lan.shape(node)


# --------------------------------------------------------------------------- running opsd on a host
def _opsd(st: NetStack, host: str, *args: str, conf: Path | None = None,
          timeout: float = 300) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(st.opsd_argv(host, *args, conf=conf), capture_output=True, text=True, timeout=timeout,
                         cwd=REPO)
    if "--json" in args and res.stdout.lstrip()[:1] in ("{", "["):
        assert_documented(args, res.stdout)
    return res


def _start(st: NetStack, host: str, *args: str, conf: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(st.opsd_argv(host, *args, conf=conf), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _once_in_log(log: Path, text: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until pgBackRest's ``log`` says ``text`` (from now on): the moment to inject a fault."""
    seen = log.stat().st_size if log.exists() else 0

    def said() -> bool:
        assert proc.poll() is None, f"finished before '{text}': {proc.communicate()}"
        return log.exists() and text in log.read_text()[seen:]

    wait_until(said, timeout=timeout, what=f"'{text}' in {log.name}", interval=0.05)


def _check(st: NetStack, host: str) -> tuple[int, dict[str, dict[str, Any]]]:
    res = _opsd(st, host, "check", "--json")
    return res.returncode, {r["name"]: r for r in json.loads(res.stdout)["results"]}


def _archive(st: NetStack) -> tuple[set[str], list[str]]:
    """Segments in the repository's archive (read over the LAN, from the primary) and its gaps."""
    text = st.pgbackrest("primary", "--output=json", "--recurse", "repo-ls", f"archive/{st.sb.stanza}").stdout
    files = parse_repo_ls(text)
    _runs, gaps = runs_and_gaps(files)
    return {a.segment.name for a in files}, [f"{g.missing_from.name}..{g.missing_to.name}" for g in gaps]


def _write_segments(st: NetStack, n: int) -> list[str]:
    names = []
    for i in range(n):
        st.psql("primary", f"insert into orders values (-{i}, 'during the fault')")
        names.append(st.psql("primary", "select pg_walfile_name(pg_current_wal_lsn())"))
        st.psql("primary", "select pg_switch_wal()")
    return names


def _no_pgbackrest_left(st: NetStack) -> list[str]:
    return [Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ") for p in under(st.root)
            if "pgbackrest" in Path(f"/proc/{p}/cmdline").read_text() and " server" not in
            Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ")]


# --------------------------------------------------------------------------- S3 cut
def test_s3_cut_during_archive_push_and_a_full_backup(healed: tuple[Lan, NetStack]) -> None:
    """The link to S3 cut while a full backup copies files and WAL is being archived: the backup fails within
    pgBackRest's io-timeout retries and is recorded failed with the endpoint's name, ``check`` names S3 as the
    cause; after the link heals archiving resumes by itself, no segment is missing, the next backup works."""
    lan, st = healed
    sb, s3 = st.sb, st.nodes["s3"]
    wait_drained(sb)
    before_labels = st.labels()
    first = sb.psql("select pg_walfile_name(pg_current_wal_lsn())")
    lan.shape(s3, rate_kbit=16000)  # slow enough that the cut lands while files are copied
    proc = _start(st, "primary", "backup", "--type", "full")
    _once_in_log(st.log("primary", "backup"), "backup file ", proc)
    lan.cut(s3)
    t_cut = time.monotonic()
    written = _write_segments(st, 3)
    check = _start(st, "primary", "check", "--json")  # meanwhile: the operator asks why
    _out, err = proc.communicate(timeout=180)
    took = time.monotonic() - t_cut
    assert proc.returncode == 1, err[-2000:]
    run_ = History(st.state("primary"), "postgres").last("backup-full")
    assert run_ is not None and run_.outcome == "failed", run_
    assert f"'{S3_NAME}:" in (run_.error or "") and "connect" in (run_.error or ""), run_.error
    assert took < 90, f"the backup took {took:.0f}s to give up after the cut (io-timeout {IO_TIMEOUT:.0f}s)"

    out, err = check.communicate(timeout=180)
    assert_documented(("check", "--json"), out)
    results = {r["name"]: r for r in json.loads(out)["results"]}
    endpoint = results["repository.endpoint"]
    assert check.returncode == 1 and endpoint["status"] == "critical", endpoint
    assert endpoint["message"].startswith(f"S3 endpoint https://{S3_NAME}:") and "all" in endpoint["message"], endpoint
    assert S3_NAME in results["repository"]["message"] and results["repository"]["status"] == "critical"
    assert ready_count(sb) >= 1  # WAL waits in pg_wal, nothing is dropped

    lan.heal(s3)
    lan.shape(s3)
    wait_drained(sb)  # archiving resumes by itself
    last = sb.psql("select last_archived_wal from pg_stat_archiver")
    segments, gaps = _archive(st)
    assert gaps == [], gaps
    span = [s for s in segments if first <= s <= last]
    lo, hi = parse_segment(first), parse_segment(last)
    assert lo is not None and hi is not None
    assert all(w in segments for w in written) and len(span) == hi.segno - lo.segno + 1, (first, last, sorted(span))
    assert st.labels() == before_labels  # the failed backup is not listed
    res = _opsd(st, "primary", "backup", "--type", "full")
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(set(st.labels()) - set(before_labels)) == 1
    run_ = History(st.state("primary"), "postgres").last("backup-full")
    assert run_ is not None and run_.outcome == "ok", run_
    _rc, results = _check(st, "primary")
    assert results["repository.endpoint"]["status"] == "ok", results["repository.endpoint"]


# --------------------------------------------------------------------------- standby cut
def test_standby_cut_during_a_backup_from_the_standby(healed: tuple[Lan, NetStack]) -> None:
    """``backup_standby``: the primary's backup copies files from the standby through pgBackRest's TLS server;
    the standby's link cut meanwhile fails the backup within the configured protocol timeout, recorded failed
    with the standby's name, nothing listed, no pgBackRest left; healed, the standby streams again and the next
    backup from it works."""
    lan, st = healed
    conf = st.sb.write_opsd_conf(st.opsd_conf("from-standby"), pgbackrest_conf=st.pgbr_conf("primary-from-standby"),
                                 data_dir=st.sb.pgdata, pg_port=st.sb.pg_port, host=st.sb.socket_dir,
                                 state_dir=st.state("primary"))
    conf.write_text(conf.read_text().replace("[pgbackrest]\n", "[pgbackrest]\nbackup_standby = true\n", 1))
    before = st.labels()
    standby = st.nodes["standby"]
    lan.shape(standby, rate_kbit=16000)
    proc = _start(st, "primary", "backup", "--type", "full", conf=conf)
    _once_in_log(st.log("primary-from-standby", "backup"), "backup file ", proc)
    lan.cut(standby)
    t_cut = time.monotonic()
    _out, err = proc.communicate(timeout=180)
    took = time.monotonic() - t_cut
    assert proc.returncode == 1, err[-2000:]
    run_ = History(st.state("primary"), "postgres").last("backup-full")
    assert run_ is not None and run_.outcome == "failed", run_
    assert STANDBY_NAME in (run_.error or ""), run_.error
    limit = float(PGBR_TIMEOUTS["protocol-timeout"])
    assert took < limit * 4, f"{took:.0f}s to give up (protocol-timeout {limit:.0f}s)"
    assert st.labels() == before
    assert _no_pgbackrest_left(st) == []

    lan.heal(standby)
    lan.shape(standby)
    st.wait_streaming(timeout=60)
    res = _opsd(st, "primary", "backup", "--type", "full", conf=conf)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "--pg2-host-type=tls" in res.stderr and "wait for replay on the standby" in res.stderr
    assert len(set(st.labels()) - set(before)) == 1


# --------------------------------------------------------------------------- drill host cut off from S3
def _drill(st: NetStack, proc: subprocess.Popen[str] | None = None) -> tuple[int, dict[str, Any], str]:
    if proc is None:
        proc = _start(st, "drill", "drill", "run", "--json", "--target", "latest")
    out, err = proc.communicate(timeout=300)
    try:
        data = json.loads(out)
    except ValueError:
        pytest.fail(f"no JSON from drill run (rc {proc.returncode}): {err[-3000:]}")
    assert_documented(("drill", "run", "--json"), out)
    return proc.returncode, data, err


def _firing(conf: Path) -> list[str]:
    return alerts.firing(build(settings_mod.load(str(conf))))


def _scratch_left(st: NetStack) -> list[str]:
    """Copies left in the drill host's scratch area: opsd's records of them, their directories (``work`` keeps
    the drills' logs), their processes."""
    scratch = st.root / "drill-scratch"
    res = _opsd(st, "drill", "scratch", "list", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    return ([json.dumps(c) for c in json.loads(res.stdout)] + [str(p) for p in scratch.iterdir()
            if p.name != "work"] + [f"pid {p}" for p in under(scratch)])


def test_drill_host_cut_off_from_s3_mid_restore(healed: tuple[Lan, NetStack]) -> None:
    """The drill host loses S3 while its restore copies files: the drill fails naming the endpoint, its copy is
    torn down (no directory, no process), the failure is recorded and alerted; the next drill works and
    resolves the alert."""
    lan, st = healed
    conf = st.write_drill_conf()
    s3 = st.nodes["s3"]
    lan.shape(s3, rate_kbit=16000)
    proc = _start(st, "drill", "drill", "run", "--json", "--target", "latest")
    _once_in_log(st.log("drill", "restore"), "restore file ", proc)
    lan.cut(s3)
    t_cut = time.monotonic()
    rc, data, err = _drill(st, proc)
    took = time.monotonic() - t_cut
    assert rc != 0, err[-2000:]
    bad = {c["name"]: c["message"] for c in data["checks"] if c["status"] == "critical"}
    assert "restore" in bad and S3_NAME in bad["restore"], data["checks"]
    assert "could not be reached (a network fault, not damage)" in bad["restore"], bad  # no verify over the cut
    assert took < 30, f"{took:.0f}s from the cut to the end of the drill (io-timeout {IO_TIMEOUT:.0f}s)"
    assert _scratch_left(st) == []  # torn down
    run_ = History(st.state("drill"), "postgres").last("drill")
    assert run_ is not None and run_.outcome == "failed" and S3_NAME in (run_.error or ""), run_
    assert f"job.drill.{st.sb.stanza}" in _firing(conf)

    lan.heal(s3)
    lan.shape(s3)
    rc, data, err = _drill(st)  # the next drill (the schedule's next turn) works
    assert rc == 0, [c for c in data["checks"] if c["status"] != "ok"] or err[-2000:]
    assert f"job.drill.{st.sb.stanza}" not in _firing(conf)
    assert _scratch_left(st) == []


@pytest.mark.xfail(strict=True, reason="pgBackRest's archive-get needs <pg1-path>/global/pg_control, which a drill "
                   "host does not have: docs/network-faults.md, 'Found, not fixed here'")
def test_a_drill_host_without_pg1_path_plans_its_drill(healed: tuple[Lan, NetStack]) -> None:
    """A drill host set up as docs/drills.md says: the repository's settings, no pg1-* (it runs no cluster), and
    a state of its own (the other drills' state caches what they read in the WAL: this one would not ask)."""
    _lan, st = healed
    documented = st.pgbr_conf("drill-documented")
    documented.write_text(re.sub(r"^pg1-.*\n", "", st.pgbr_conf("drill").read_text(), flags=re.M))
    shutil.chown(documented, "root", "postgres")
    documented.chmod(0o640)
    conf = st.write_drill_conf(name="drill-documented", pgbackrest_conf=documented)
    proc = _start(st, "drill", "drill", "run", "--json", "--target", "latest", conf=conf)
    rc, data, err = _drill(st, proc)
    assert rc == 0, [c for c in data["checks"] if c["status"] != "ok"] or err[-2000:]


# --------------------------------------------------------------------------- a slow, lossy link
RATE_KBIT, LOSS_PCT = 12000, 3.0


def _progress(path: Path, stop: threading.Event, samples: list[tuple[float, int]]) -> None:
    """Bytes under ``path`` every 0.25 s (wall clock, as pgBackRest's log)."""
    while not stop.is_set():
        total = 0
        for d, _dirs, files in os.walk(path):  # a directory removed meanwhile is skipped
            for f in files:
                with contextlib.suppress(OSError):  # so is a file
                    total += os.stat(os.path.join(d, f)).st_size
        samples.append((time.time(), total))
        stop.wait(0.25)


def _restore_window(log: Path, seen: int) -> tuple[float, float]:
    """When pgBackRest's restore (logged after byte ``seen``) wrote its first and its last file."""
    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
              for line in log.read_text()[seen:].splitlines() if "restore file " in line]
    assert stamps, f"no 'restore file' in {log}"
    return stamps[0], stamps[-1]


def _longest_stall(samples: list[tuple[float, int]], window: tuple[float, float]) -> float:
    """The longest time the restored bytes did not grow while pgBackRest restored files."""
    inside = [(t, n) for t, n in samples if window[0] - 0.5 <= t <= window[1]]
    stall, last_t, last_n = 0.0, inside[0][0], inside[0][1]
    for t, n in inside[1:]:
        if n > last_n:
            last_t, last_n = t, n
        stall = max(stall, t - last_t)
    return stall


def test_a_slow_lossy_link_during_a_restore_and_a_drill(healed: tuple[Lan, NetStack]) -> None:
    """S3's link limited to 12 Mbit/s with 3 % of packets lost both ways (this kernel has no netem: no fixed
    delay; the rate limit queues packets, which delays them): a side restore on the primary and a drill on the
    drill host both finish with the configured timeouts (pgBackRest io-timeout 2 s: each read waits less than
    that), their files grow without a stall as long as that timeout, and they take longer than the link allows at
    full speed (the shaping really acted)."""
    lan, st = healed
    lan.shape(st.nodes["s3"], rate_kbit=RATE_KBIT, loss_pct=LOSS_PCT)
    newest = st.info()["backup"][-1]  # type: ignore[index]
    repo_bytes = int(newest["info"]["repository"]["delta"])
    floor = repo_bytes * 8 / (RATE_KBIT * 1000)  # seconds at the link's rate
    target = st.root / "side-restore"
    port = str(free_port())
    for host, argv, watch in (
            ("primary", ("restore", "--target-dir", str(target), "--port", port, "--type", "immediate"), target),
            ("drill", ("drill", "run", "--json", "--target", "latest"), st.root / "drill-scratch")):
        log = st.log(host, "restore")
        seen = log.stat().st_size if log.exists() else 0
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        watcher = threading.Thread(target=_progress, args=(watch, stop, samples), daemon=True)
        watcher.start()
        t0 = time.monotonic()
        res = _opsd(st, host, *argv, timeout=300)
        took = time.monotonic() - t0
        stop.set()
        watcher.join()
        assert res.returncode == 0, (host, res.stdout[-2000:], res.stderr[-3000:])
        assert took > floor, f"{host}: {took:.1f}s for {repo_bytes} bytes: the link was not slowed"
        stall = _longest_stall(samples, _restore_window(log, seen))
        assert stall < IO_TIMEOUT, f"{host}: progress stalled {stall:.1f}s (io-timeout {IO_TIMEOUT:.0f}s)"
