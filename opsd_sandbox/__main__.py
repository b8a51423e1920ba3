"""``python -m opsd_sandbox demo``: opsd's main job end to end on a local sandbox.

Brings up PostgreSQL 15 (archiving off, as on a fresh host), a TLS S3 endpoint and pgBackRest, then runs
the real ``opsd`` commands a DBA would: setup, a full backup, some writes, a diff backup, a bad DELETE found in
the archived WAL and undone into a new schema, marker rows, a recovery drill to the latest point, verify, check,
status, info; then service levels: query statistics turned on, a slow statement and an unused index found
(opsd_sandbox/demo_queries.py).
``python -m opsd_sandbox demo --ha`` does it on a Patroni pair through a switchover.
``python -m opsd_sandbox up`` leaves a sandbox running and prints how to use it.
SIGTERM, SIGINT (Ctrl-C) and SIGHUP stop ``up`` and ``demo`` as their normal end does, also during start-up:
every server and process they started is stopped (exit status 128 + the signal).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from opsd_sandbox.demo_queries import service_levels
from opsd_sandbox.procs import Stopped, stop_on_signals, stop_strays
from opsd_sandbox.stack import Sandbox


def _opsd(sb: Sandbox | Path, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run ``opsd`` as a DBA would and show it; ``sb`` is the sandbox (its opsd.toml) or a config path."""
    conf = sb if isinstance(sb, Path) else sb.opsd_conf
    cmd = ["opsd", "--config", str(conf), *args]
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    started = time.monotonic()
    with subprocess.Popen([sys.executable, "-m", "opsd", *cmd[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            out, err = proc.communicate()
        except BaseException:  # stopped: opsd stops its children (a drill's scratch copy) on SIGTERM, then exits
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    sys.stdout.write(res.stdout)
    for line in res.stderr.splitlines():
        if line.startswith(("opsd:", "hint:")):
            print(line)
    print(f"[exit {res.returncode}, {time.monotonic() - started:.1f}s]", flush=True)
    if res.returncode not in expect:
        raise SystemExit(f"demo: 'opsd {' '.join(args)}' exited {res.returncode}; stderr:\n{res.stderr[-4000:]}")
    return res


def demo(keep: bool) -> None:
    started = time.monotonic()
    sb = Sandbox.create(prefix="opsd-demo-", archiving=False)
    print(f"== bringing up the sandbox in {sb.root} (PostgreSQL 15, TLS S3 endpoint, pgBackRest)", flush=True)
    try:
        sb.up()
        print(f"   PostgreSQL on port {sb.pg_port}, S3 endpoint {sb.s3_endpoint}, stanza {sb.stanza!r}")
        _opsd(sb, "config", "check")
        _opsd(sb, "setup", expect=(6,))  # archive_mode needs a restart: opsd says so (exit 6) and stops
        _opsd(sb, "setup", "--restart")
        _opsd(sb, "backup", "--type", "full")
        print("\n== some writes: 50,000 orders, then a WAL switch", flush=True)
        sb.psql("create table orders(id bigint primary key, sku text not null, qty int not null, "
                "created_at timestamptz not null default now())")
        sb.psql("insert into orders(id, sku, qty) select g, 'SKU-' || (g % 500), 1 + g % 9 "
                "from generate_series(1, 50000) g")
        sb.psql("select pg_switch_wal()")
        _opsd(sb, "backup", "--type", "diff")
        _bad_delete(sb)
        _rehearsal(sb)
        print("\n== marker rows (the daemon writes one a minute), then archive the WAL", flush=True)
        for _ in range(3):
            _opsd(sb, "drill", "heartbeat")
        sb.psql("select pg_switch_wal()")
        time.sleep(2)
        _opsd(sb, "drill", "run", "--target", "latest")
        _opsd(sb, "verify")
        _opsd(sb, "check")
        _opsd(sb, "status")
        _opsd(sb, "info")
        service_levels(sb, _opsd)
        print(f"\n== demo finished in {time.monotonic() - started:.1f}s")
    finally:
        _down(sb, remove=not keep)
        if keep:
            print(f"   kept {sb.root} (services stopped)")


def _rehearsal(sb: Sandbox) -> None:
    """A release's migration tried on a restored copy first: a column with a volatile default rewrites orders under
    ACCESS EXCLUSIVE (a hazard, exit 6), and its rollback is proven exact. It runs as an OS user of its own and
    the table's owning role, never as opsd's or a superuser."""
    print("\n== a migration rehearsed on a restored copy before production: orders gets a stamped column", flush=True)
    if subprocess.run(["id", "opsd-migrate"], check=False, capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "opsd-migrate"],
                       check=True)
    sb.psql("do $$ begin if not exists (select from pg_roles where rolname = 'shop') then create role shop login; "
            "end if; end $$")
    sb.psql("alter table orders owner to shop")
    sb.psql("select pg_switch_wal()")
    time.sleep(2)
    work = Path(f"/tmp/opsd-demo-migration-{os.getpid()}")
    work.mkdir(mode=0o755, exist_ok=True)
    os.chmod(work, 0o755)  # noqa: S103 - the migration's OS user reads it
    (work / "up.sql").write_text("alter table orders add column checked_at timestamptz not null "
                                 "default clock_timestamp();\n")
    (work / "down.sql").write_text("alter table orders drop column checked_at;\n")
    for f in work.iterdir():
        f.chmod(0o644)
    conf = sb.root / "opsd-rehearse.toml"
    conf.write_text(sb.opsd_conf.read_text() + '\n[rehearse]\nos_user = "opsd-migrate"\nlarge_table = "1MB"\n')
    try:
        psql = "psql -X -v ON_ERROR_STOP=1 -f"
        _opsd(conf, "rehearse", "--dbname", "postgres", "--role", "shop", "--workdir", str(work), "--tag", "demo",
              "--migrate", f"{psql} up.sql", "--rollback", f"{psql} down.sql", expect=(6,))  # passed, with a hazard
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


def _bad_delete(sb: Sandbox) -> None:
    """Someone deletes 400 orders by mistake, among the shop's other writes: found in the WAL, then undone into a
    new schema beside the live table."""
    print("\n== new orders, a bad DELETE of 400 orders in one transaction, more orders; then a WAL switch", flush=True)
    time.sleep(1.1)  # after the diff backup's end (recorded in whole seconds)
    since = sb.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'")
    for i in range(3):
        sb.psql(f"insert into orders(id, sku, qty) values ({60000 + i}, 'SKU-1', 1)")
    sb.psql("delete from orders where id between 1000 and 1399")
    for i in range(3, 6):
        sb.psql(f"insert into orders(id, sku, qty) values ({60000 + i}, 'SKU-2', 2)")
    sb.psql("select pg_switch_wal()")
    time.sleep(2)
    found = _opsd(sb, "wal", "find", "--table", "public.orders", "--since", since)
    rows = [line.split() for line in found.stdout.splitlines() if line[:1].isdigit()]
    xid = next(r[0] for r in rows if r[-2] == "400")  # the deletes column
    _opsd(sb, "restore", "--table", "public.orders", "--before-xid", xid, "--into-schema", "undo_bad_delete",
          "--yes")
    back = sb.psql("select count(*) from undo_bad_delete.orders where id between 1000 and 1399")
    print(f"   the 400 orders are back beside the live table: {back} rows in undo_bad_delete.orders")


def demo_ha(keep: bool) -> None:
    """Two PostgreSQL nodes under Patroni (etcd), the same opsd.toml on both: opsd follows a switchover."""
    from opsd_sandbox.ha import HaCluster, available

    if available():
        raise SystemExit(f"demo --ha: {available()}")
    started = time.monotonic()
    sb = Sandbox.create(prefix="opsd-demo-ha-", archiving=False)
    print(f"== bringing up the sandbox in {sb.root}, then etcd and two Patroni nodes", flush=True)
    ha = HaCluster(sb, scope="demo")
    try:
        sb.up()
        ha.up()
        a = ha.wait_leader()
        [b] = [n for n in ha.nodes if n is not a]
        print(f"   {a.name} leads (port {a.port}, Patroni {a.api}); {b.name} streams from it (port {b.port})")
        _opsd(a.conf, "setup")
        print(f"\n== the daemon's jobs once on each node ({a.name} leads)", flush=True)
        _opsd(a.conf, "daemon", "--once")
        _opsd(b.conf, "daemon", "--once")
        _opsd(a.conf, "health", "replication")
        print(f"\n== patronictl switchover --candidate {b.name}", flush=True)
        ha.switchover(b)
        print(f"\n== the same jobs, same config: now {b.name} backs up and {a.name} skips", flush=True)
        _opsd(b.conf, "daemon", "--once")
        _opsd(a.conf, "daemon", "--once")
        _opsd(b.conf, "check")
        _opsd(b.conf, "window")
        _opsd(a.conf, "health", "replication")
        print(f"\n== demo --ha finished in {time.monotonic() - started:.1f}s")
    finally:
        ha.down()
        _down(sb, remove=not keep)


def up() -> None:
    """Readiness for scripts: the first line names the folder and ports, ``sandbox up in`` says it is ready."""
    sb = Sandbox.create(prefix="opsd-sandbox-", archiving=True)
    print(f"bringing up a sandbox in {sb.root}: PostgreSQL on port {sb.pg_port}, S3 endpoint {sb.s3_endpoint} "
          f"(moto on port {sb.s3_port})", flush=True)
    try:
        sb.up()
        print(f"sandbox up in {sb.root}\n  export OPSD_CONFIG={sb.opsd_conf}\n  opsd setup && opsd backup\n"
              "Ctrl-C stops it.", flush=True)
        while True:
            signal.pause()
    finally:
        _down(sb, remove=False)


def _down(sb: Sandbox, *, remove: bool) -> None:
    """The sandbox's own teardown, then whatever is still running in its folder (a server whose start a stop
    cut off, what a stopped opsd left: pgBackRest, a drill's scratch PostgreSQL)."""
    sb.down()
    strays = stop_strays(sb.root)
    if strays:
        print(f"   stopped {len(strays)} leftover process(es) in {sb.root}: pids {strays}", flush=True)
    if remove:
        shutil.rmtree(sb.root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m opsd_sandbox", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    d = sub.add_parser("demo", help="run opsd end to end on a throwaway sandbox (default)")
    d.add_argument("--keep", action="store_true", help="keep the sandbox folder afterwards")
    d.add_argument("--ha", action="store_true", help="a Patroni pair instead: opsd follows a switchover")
    sub.add_parser("up", help="bring up a sandbox and keep it running until Ctrl-C")
    r = sub.add_parser("sample-report", help="generate the sample monthly report (docs/reports.md)")
    r.add_argument("dir", nargs="?", default="docs", help="output directory (default: docs)")
    args = p.parse_args()
    if args.cmd == "sample-report":
        from opsd_sandbox.sample_report import generate

        for path in generate(Path(args.dir)):
            print(path)
        return
    if os.geteuid() != 0:
        raise SystemExit("opsd_sandbox: run as root (it starts nginx and runs PostgreSQL as 'postgres')")
    try:
        with stop_on_signals():
            if args.cmd == "up":
                up()
            elif getattr(args, "ha", False):
                demo_ha(getattr(args, "keep", False))
            else:
                demo(getattr(args, "keep", False))
    except Stopped as e:
        print(f"opsd_sandbox: stopped by {signal.Signals(e.signum).name}: everything it started is stopped",
              file=sys.stderr, flush=True)
        raise


if __name__ == "__main__":
    main()
