"""Migration rehearsal on the real stack: a real TypeORM release (a benign migration and a hazardous one, and
their reverts) and plain psql migrations, each run by ``opsd rehearse`` on a restored copy of a supply-chain
database with a few hundred thousand stock movements, as an unprivileged OS user and the tables' owning role.
Production is never touched: its checksums, its sessions and the repository's WAL say so."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, archived_wal, switch_and_wait

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parent.parent / "data"
DB, OWNER, OS_USER = "rehearse_shop", "shop_owner", "opsd-migrate"
TYPEORM = Path(os.environ.get("OPSD_TYPEORM_DIR", "/var/cache/opsd-test/typeorm"))
def _sum(sb: Sandbox, table: str) -> str:
    return sb.psql(f"select md5(coalesce(string_agg(t::text, ',' order by t::text), '')) || '/' || count(*) "
                   f"from {table} t", db=DB)


def _production(sb: Sandbox) -> dict[str, str]:
    return {t: _sum(sb, t) for t in ("sc.orders", "sc.stock_movements", "sc.stocks", "sc.audit")}


@pytest.fixture(scope="module")
def shop(ready_stack: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """rehearse_shop owned by shop_owner (no superuser), 200,000 more stock movements, backed up and archived;
    an OS user of the migration's own; a config naming both."""
    sb = ready_stack
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER])
    sb.psql(f"drop database if exists {DB} with (force)")
    sb.psql(f"drop role if exists {OWNER}")
    sb.psql(f"create role {OWNER} login")
    sb.psql(f"create database {DB} owner {OWNER}")
    run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-d", DB, "-XAq", "-v",
               "ON_ERROR_STOP=1", "-c", f"set role {OWNER}", "-f", str(DATA / "supply_chain.sql"), "-c",
               "alter table sc.stock_movements disable trigger keep_stock", "-c",
               "insert into sc.stock_movements (sku, order_id, qty, note) select 'SKU-' || (g % 50 + 1), g % 500 + 1,"
               " 1, 'bulk ' || g from generate_series(1, 200000) g", "-c",
               "alter table sc.stock_movements enable trigger keep_stock", "-c", "analyze"]))
    assert opsd(sb.opsd_conf, "backup", "--type", "incr").returncode == 0
    switch_and_wait(sb)
    conf = tmp_path_factory.mktemp("rehearse") / "opsd.toml"
    conf.write_text(sb.opsd_conf.read_text() + f'\n[rehearse]\nos_user = "{OS_USER}"\nlarge_table = "1MB"\n')
    yield sb, conf
    sb.psql(f"drop database if exists {DB} with (force)")
    sb.psql(f"drop role if exists {OWNER}")
    run(["rm", "-rf", *(str(d) for d in Path("/tmp").glob(f"opsd-rehearse-{os.getpid()}-*"))])  # this run's workdirs


def _workdir(name: str, files: dict[str, str]) -> Path:
    """A directory the migration's OS user can read (pytest's tmp_path is root's alone); this run's own (the pid):
    another run of this module on the machine never removes it under a running rehearsal."""
    d = Path("/tmp") / f"opsd-rehearse-{os.getpid()}-{name}"
    run(["rm", "-rf", str(d)])
    d.mkdir(mode=0o755)
    for n, text in files.items():
        (d / n).write_text(text)
        (d / n).chmod(0o644)
    return d


def _rehearse(sb: Sandbox, conf: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    before_wal = archived_wal(sb)
    res = opsd(conf, "rehearse", "--dbname", DB, *args, "--json", timeout=900)
    doc = json.loads(res.stdout) if res.stdout.lstrip().startswith("{") else {}
    # nothing of the copy reached the repository: no new timeline's history, no segment the copy wrote
    new = [w for w in archived_wal(sb) if w not in before_wal]
    assert not [w for w in new if w.endswith(".history")], new
    return res, doc


def _why(res: subprocess.CompletedProcess[str], doc: dict) -> str:  # type: ignore[type-arg]
    """On failure: the rehearsal's own reasons and the command's last lines, then opsd's stderr."""
    r = doc.get("result", {})
    return json.dumps({"failures": r.get("failures"), "tails": [p.get("output_tail") for p in r.get("phases", [])]},
                      indent=1) + "\n" + res.stderr[-2000:]


def test_a_typeorm_release_is_rehearsed_its_hazards_named_and_its_revert_exact(shop: tuple[Sandbox, Path]) -> None:
    sb, conf = shop
    run(["bash", str(DATA / "typeorm" / "install.sh"), str(TYPEORM)])
    before = _production(sb)
    revert = "npx typeorm migration:revert -d data-source.js"
    res, doc = _rehearse(sb, conf, "--migrate", "npx typeorm migration:run -d data-source.js",
                         "--rollback", f"{revert} && {revert}", "--workdir", str(TYPEORM), "--tag", "r42")
    assert res.returncode == 6, _why(res, doc)  # passed, with hazards
    r = doc["result"]
    assert r["verdict"] == "HAZARDS" and not r["failures"], r["failures"]
    codes = {h["code"]: h for h in r["hazards"]}
    # the volatile default rewrote stock_movements under ACCESS EXCLUSIVE; the FK was validated at once
    assert codes["rewrite"]["relation"] == "sc.stock_movements", r["hazards"]
    assert "ACCESS EXCLUSIVE held" in codes["rewrite"]["message"] and "MiB" in codes["rewrite"]["message"]
    assert codes["constraint-validated"]["relation"] == "sc.stock_movements"
    assert "index-not-concurrent" not in codes  # the benign migration's index was built CONCURRENTLY
    ix = {i["index"]: i for i in r["indexes"]}
    assert ix['sc."IDX_stock_movements_pickNote"']["concurrently"] and ix['sc."IDX_stock_movements_pickNote"']["valid"]
    assert any(w["relation"] == "sc.stock_movements" for w in r["rewrites"])
    locks = {(lk["relation"], lk["mode"]) for lk in r["locks"]}
    assert ("sc.stock_movements", "AccessExclusiveLock") in locks
    assert any(s["text"].startswith('ALTER TABLE "sc"."stock_movements" ADD COLUMN "checkedAt"')
               for s in r["statements"])
    # the revert restores the schema exactly and changes no row
    assert r["schema_diff"] == [] and all(not (t["missing"] or t["extra"]) for t in r["tables"]), r["tables"]
    assert {p["name"]: p["exit_code"] for p in r["phases"]} == {"migrate": 0, "rollback": 0}
    assert all(p["sessions_on_copy"] >= 1 and p["sessions_on_production"] == 0 for p in r["phases"])
    assert r["next_steps"][0] == "opsd restore-point create before-r42"
    # production untouched
    assert _production(sb) == before
    assert sb.psql("select count(*) from information_schema.columns where column_name = 'pickNote'", db=DB) == "0"
    # recorded: status, metrics and the month's report show it
    status = opsd(conf, "status").stdout
    assert re.search(r"^rehearse +- +manual .*verdict HAZARDS", status, re.M), status
    assert 'opsd_rehearse_last_verdict{verdict="HAZARDS"} 1.0' in opsd(conf, "metrics").stdout
    month = datetime.now(UTC).strftime("%Y-%m")
    report = opsd(conf, "report", "--month", month, "--format", "md").stdout
    assert "## Migration rehearsals" in report and "| rehearse_shop | HAZARDS |" in report, report[-2000:]


def test_a_rollback_that_forgets_a_column_fails_and_the_diff_names_it(shop: tuple[Sandbox, Path]) -> None:
    sb, conf = shop
    d = _workdir("v42", {"up.sql": 'alter table sc.orders add column "giftNote" text;\n'
                                   "alter table sc.orders add column channel text default 'web';\n",
                         "down.sql": 'alter table sc.orders drop column "giftNote";\n'})
    before = _production(sb)
    res, doc = _rehearse(sb, conf, "--migrate", "psql -X -v ON_ERROR_STOP=1 -f up.sql",
                         "--rollback", "psql -X -v ON_ERROR_STOP=1 -f down.sql", "--workdir", str(d))
    assert res.returncode == 1, _why(res, doc)
    r = doc["result"]
    assert r["verdict"] == "FAILED"
    assert any("does not restore the schema" in f for f in r["failures"]), r["failures"]
    assert [x for x in r["schema_diff"] if x.startswith("+") and "channel" in x], r["schema_diff"]
    assert not [x for x in r["schema_diff"] if "giftNote" in x]
    assert _production(sb) == before


def test_a_migration_that_fails_half_way_is_named_and_the_copy_torn_down(shop: tuple[Sandbox, Path]) -> None:
    """It first tries production's own socket (a data source with production's host hard-wired): hidden from
    it, that fails; then its script fails at the second statement."""
    sb, conf = shop
    d = _workdir("v43", {"up.sql": "begin;\nalter table sc.orders add column region text;\n"
                                   "alter table sc.no_such_table add column region text;\ncommit;\n"})
    before = _production(sb)
    sneak = (f"psql -X -h {sb.socket_dir} -p {sb.pg_port} -c 'alter table sc.orders add column leaked int'; "
             "psql -X -v ON_ERROR_STOP=1 -f up.sql")
    res, doc = _rehearse(sb, conf, "--migrate", sneak, "--workdir", str(d))
    assert res.returncode == 1, _why(res, doc)
    r = doc["result"]
    tail = "\n".join(r["phases"][0]["output_tail"])
    assert f'connection to server on socket "{sb.socket_dir}/.s.PGSQL.' in tail and "No such file" in tail, tail
    failed = r["failures"][0]
    assert "the migration failed (exit 3)" in failed and "sc.no_such_table" in failed, r["failures"]
    errors = [s for s in r["statements"] if s["error"]]
    assert len(errors) == 1 and errors[0]["text"].startswith("alter table sc.no_such_table"), r["statements"]
    scratch = json.loads(opsd(conf, "scratch", "list", "--json").stdout)
    assert scratch == [], scratch
    assert _production(sb) == before
    assert sb.psql("select count(*) from information_schema.columns where column_name = 'leaked'", db=DB) == "0"


def test_refusals_before_anything_runs(shop: tuple[Sandbox, Path], tmp_path: Path) -> None:
    """A superuser role, opsd's own OS user, an environment naming production: refused, nothing restored."""
    _sb, conf = shop
    res = opsd(conf, "rehearse", "--dbname", DB, "--migrate", "true", "--env", "PGHOST=/var/run/postgresql")
    assert res.returncode == 2 and "PGHOST" in res.stderr and "Traceback" not in res.stderr
    own = tmp_path / "own.toml"
    own.write_text(conf.read_text().replace(f'os_user = "{OS_USER}"', 'os_user = "postgres"'))
    res = opsd(own, "rehearse", "--dbname", DB, "--migrate", "true")
    assert res.returncode == 5 and "opsd.run_as" in res.stderr, res.stderr
    res = opsd(conf, "rehearse", "--dbname", DB, "--role", "postgres", "--migrate", "true")
    assert res.returncode == 5 and "superuser" in res.stderr, res.stderr[-2000:]
