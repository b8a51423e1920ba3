"""The scratch directory cannot be turned against production (issue 14, item 3): an unsafe one is named, a
planted symlink or pid file gets no signal, no write and no removal, work files are created fresh."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsd.adapters import files, processes
from opsd.errors import OpsdError
from tests.conftest import _me


def test_an_unsafe_scratch_directory_is_named(tmp_path: Path) -> None:
    me = _me()
    ok = tmp_path / "ok"
    ok.mkdir(mode=0o750)
    os.chmod(tmp_path, 0o755)
    assert files.private_dir_problem(ok / "scratch", me) is None  # not there yet: opsd creates it
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    assert "writable by other users (mode 777)" in (files.private_dir_problem(open_dir, me) or "")
    assert "without the sticky bit" in (files.private_dir_problem(open_dir / "scratch", me) or "")
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)  # like /tmp: others cannot replace what is ours in it
    assert files.private_dir_problem(sticky / "scratch", me) is None
    link = tmp_path / "link"
    link.symlink_to(ok)
    assert "symbolic link" in (files.private_dir_problem(link, me) or "")
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        os.chown(foreign, 65534, 65534)
        assert "belongs to uid 65534" in (files.private_dir_problem(foreign, me) or "")


def test_a_planted_symlink_is_no_scratch_instance_and_is_never_removed(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    root.mkdir()
    production = tmp_path / "main"
    production.mkdir()
    (production / "PG_VERSION").write_text("15\n")
    (root / "drill-x").symlink_to(production)
    (root / "drill-real").mkdir()
    assert files.scratch_instances(root) == [root / "drill-real"]
    with pytest.raises(OpsdError, match="not a scratch instance"):
        files.remove_scratch(root / "drill-x", root)
    assert (production / "PG_VERSION").exists()


def test_a_planted_pid_file_gets_no_signal(tmp_path: Path) -> None:
    """A postmaster.pid naming another cluster's postmaster (here a stand-in whose command line says postgres)
    in a scratch directory: stop_postmaster checks the process works in that directory, and sends nothing."""
    elsewhere = tmp_path / "production"
    elsewhere.mkdir()
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "postgres"], cwd=elsewhere)
    try:
        planted = tmp_path / "drill-planted"
        planted.mkdir()
        (planted / "postmaster.pid").write_text(f"{victim.pid}\n{elsewhere}\n")
        assert processes.stop_postmaster(planted, timeout=2) is False
        time.sleep(0.2)
        assert victim.poll() is None  # still alive
    finally:
        victim.kill()
        victim.wait()


def test_work_files_are_written_fresh_never_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "etc-pg_hba.conf"
    target.write_text("production rules\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "pg_hba.conf").symlink_to(target)
    files.write_private(work / "pg_hba.conf", "local all all trust\n", _me())
    assert target.read_text() == "production rules\n"
    assert not (work / "pg_hba.conf").is_symlink() and oct((work / "pg_hba.conf").stat().st_mode & 0o777) == "0o600"
    run = work / "run"
    run.mkdir()
    os.chmod(run, 0o777)  # a pre-made open socket directory
    (run / ".s.PGSQL.5999").write_text("")
    files.fresh_private_dir(run, _me())
    assert oct(run.stat().st_mode & 0o777) == "0o700" and not list(run.iterdir())
    (work / "run2").symlink_to(tmp_path)
    files.fresh_private_dir(work / "run2", _me())
    assert not (work / "run2").is_symlink() and (work / "run2").is_dir()


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    out.write_text("old report\n")
    files.write_whole(out, "new report \udcff\n")  # a lone surrogate (from undecodable argv) is replaced, not fatal
    assert out.read_text() == "new report ?\n" and out.stat().st_mode & 0o777 == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / f".planted.{os.getpid()}.tmp").symlink_to(victim)  # the temporary name, planted: never followed
    with pytest.raises(OpsdError, match=r"cannot write .*planted"):
        files.write_whole(tmp_path / "planted", "x")
    assert victim.read_text() == "keep\n"
    with pytest.raises(OpsdError, match=r"directory .*/missing does not exist"):
        files.write_whole(tmp_path / "missing" / "r.md", "x")
    assert not (tmp_path / "missing").exists()
    for directory in (Path(""), tmp_path):  # '--output ""' is the current directory
        with pytest.raises(OpsdError, match="it is a directory"):
            files.write_whole(directory, "x")
