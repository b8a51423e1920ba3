"""The scratch directory on the real stack (issue 14, item 3): a world-writable one is refused by config check
(exit 3) and by the drill (exit 5, nothing restored); a symlink planted as a scratch instance pointing at the
production data directory gets no signal: the primary keeps running and the link is left alone."""

from __future__ import annotations

import os

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import mkdir_pg
from tests.conftest import opsd

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_world_writable_scratch_dir_is_refused(ready_stack: Sandbox) -> None:
    sb = ready_stack
    open_dir = sb.root / "open-scratch"
    open_dir.mkdir(exist_ok=True)
    os.chmod(open_dir, 0o777)
    conf = sb.write_opsd_conf(sb.root / "open-scratch.toml", drill={"scratch_dir": str(open_dir)})
    check = opsd(conf, "config", "check")
    assert check.returncode == 3 and "drill.scratch_dir: not private" in check.stderr, check.stderr
    drill = opsd(conf, "drill", "run", "--target", "latest")
    assert drill.returncode == 5 and "drill.scratch_dir is not private" in drill.stderr, drill.stderr
    assert list(open_dir.iterdir()) == []  # nothing restored there


def test_a_planted_link_to_production_gets_no_signal(ready_stack: Sandbox) -> None:
    sb = ready_stack
    scratch = sb.state_dir / "scratch"
    mkdir_pg(scratch, 0o750)
    link = scratch / "drill-planted"
    link.symlink_to(sb.pgdata)
    try:
        res = opsd(sb.opsd_conf, "drill", "clean")
        assert res.returncode == 0, res.stderr
        assert sb.psql("select 1") == "1"  # the primary still runs
        assert link.is_symlink() and (sb.pgdata / "PG_VERSION").exists()
    finally:
        link.unlink()
