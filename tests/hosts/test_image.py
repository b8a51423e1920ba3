"""The image, built and run by a real Docker engine: the Dockerfile on a base imported from the suite's own Debian 12
root (no registry here), then opsd in it (testcontainers) against the sandbox: its version, its config check, a
full backup that the host's pgBackRest sees and the bind-mounted history records, and how it runs (as postgres,
under tini, stopped cleanly by ``docker stop``). The engine is started here when none runs, and stopped after."""

from __future__ import annotations

import json
import socket
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import opsd
from opsd.adapters.stores.runs import History
from opsd_sandbox import Sandbox, hosts, image
from opsd_sandbox.procs import mkdir_pg
from tests.integration.helpers import labels, wait_until

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[image.Engine]:
    if why := image.missing():
        pytest.skip(f"image: {why}")
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = True  # its reaper is an image to pull; every container here is removed
    t0 = time.monotonic()
    with image.Engine.running(tmp_path_factory.mktemp("docker") / "dockerd.log") as e:
        _timing(pytestconfig, f"engine {'started' if e.proc else 'running'} {time.monotonic() - t0:.1f}s")
        yield e


@pytest.fixture(scope="module")
def opsd_image(engine: image.Engine, host_root: Path, pytestconfig: pytest.Config) -> str:
    """This checkout built on the imported root: the base is imported once per root, the layers are cached."""
    t0 = time.monotonic()
    base = image.import_base(host_root, hosts.root_key())
    t1 = time.monotonic()
    image.build(REPO, base)
    _timing(pytestconfig, f"base {base} {t1 - t0:.1f}s, build {time.monotonic() - t1:.1f}s")
    return image.IMAGE


def _timing(config: pytest.Config, line: str) -> None:
    """One line on the terminal (also under -q, and with output captured): where the module's time goes."""
    reporter, capture = (config.pluginmanager.get_plugin(n) for n in ("terminalreporter", "capturemanager"))
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[image] {line}")


@dataclass
class Ran:
    rc: int
    out: str
    err: str


def run_opsd(img: str, *args: str, mounts: Sequence[Path] = (), timeout: float = 300) -> Ran:
    """``opsd ARGS`` in a new container of ``img`` (its entrypoint), on the host's network, ``mounts`` bound at
    the same paths; removed afterwards."""
    from testcontainers.core.container import DockerContainer

    c = DockerContainer(img).with_command(list(args)).with_kwargs(network_mode="host")
    for m in mounts:
        c = c.with_volume_mapping(str(m), str(m), "rw")
    c.start()
    try:
        rc = c.get_wrapped_container().wait(timeout=timeout)["StatusCode"]
        out, err = c.get_logs()
    finally:
        c.stop()
    return Ran(int(rc), out.decode(), err.decode())


@pytest.fixture
def own_state(ready_stack: Sandbox, request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """An opsd.toml for the sandbox with a state dir of this test's own (the session's is shared): (conf, state)."""
    sb = ready_stack
    name = request.node.name.removeprefix("test_")
    state = mkdir_pg(sb.root / f"state-image-{name}", 0o750)
    conf = sb.write_opsd_conf(sb.root / f"opsd-image-{name}.toml", state_dir=state,
                              schedule={"full": "", "check": ""})
    return conf, state


def test_version_is_this_checkouts(opsd_image: str) -> None:
    """Fails when the image installs another opsd than this checkout's (a stale layer, PyPI's opsd) or its
    entrypoint does not run opsd."""
    want = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert want == opsd.__version__
    ran = run_opsd(opsd_image, "--version")
    assert (ran.rc, ran.out.strip()) == (0, f"opsd, version {want}"), ran.err


def test_config_check_good_and_bad(opsd_image: str, own_state: tuple[Path, Path], ready_stack: Sandbox) -> None:
    """Fails when the image cannot load a good config (no tzdata, its postgres unknown to its own passwd, the
    bind-mounted paths unreadable by its user) or does not report a bad one as the documented exit 3."""
    conf, _ = own_state
    good = run_opsd(opsd_image, "--config", str(conf), "config", "check", mounts=[ready_stack.root])
    assert good.rc == 0, good.out + good.err
    assert good.out.strip() == f"config {conf}: ok"

    bad = conf.with_name("opsd-image-bad.toml")
    bad.write_text(conf.read_text().replace(f"port = {ready_stack.pg_port}\n", "port = 99999\n"))
    ran = run_opsd(opsd_image, "--config", str(bad), "config", "check", mounts=[ready_stack.root])
    assert ran.rc == 3, ran.out + ran.err
    header, *problems = ran.err.strip().splitlines()
    assert header == f"config {bad}: 1 problem(s)"
    assert [p.strip() for p in problems] == ["postgres.port: Input should be less than or equal to 65535"]


def test_backup_from_the_image(opsd_image: str, own_state: tuple[Path, Path], ready_stack: Sandbox) -> None:
    """Fails when opsd in the image cannot reach the cluster through its socket or the repository through the
    host's network and the sandbox CA, cannot write pgBackRest's lock and log files or opsd's state as the host's
    postgres (its uid/gid), or records the run nowhere the host can read."""
    sb = ready_stack
    conf, state = own_state
    before = set(labels(sb))
    t0 = time.monotonic()
    ran = run_opsd(opsd_image, "--config", str(conf), "backup", "--type", "full", "--json", mounts=[sb.root])
    took = time.monotonic() - t0
    assert ran.rc == 0, ran.out + ran.err
    result = json.loads(ran.out)
    assert result["type"] == "full" and result["label"] not in before
    assert result["label"] in labels(sb)  # the host's pgbackrest info sees it in the repository

    runs = History(state, "postgres").runs(limit=5)
    assert [(r.job, r.outcome, r.trigger) for r in runs] == [("backup-full", "ok", "cli")]
    assert runs[0].host == socket.gethostname()  # the host's network, so the host's name
    assert runs[0].duration is not None and 0 < runs[0].duration <= took
    owner = {(p.stat().st_uid, p.stat().st_gid) for p in state.rglob("*")}
    assert owner == {_pg_ids()}, f"state written as {owner}, not as the host's postgres"


def test_runs_as_postgres_under_tini_and_stops_cleanly(opsd_image: str, own_state: tuple[Path, Path],
                                                       ready_stack: Sandbox) -> None:
    """The image's default command (the daemon): fails when the image runs as root (USER dropped), when tini is
    not PID 1 (an ENTRYPOINT in shell form, or without tini: crashed drills' postmasters stay zombies), or when
    docker stop's SIGTERM does not reach opsd (killed after the grace time: exit 137)."""
    from testcontainers.core.container import DockerContainer

    conf, _ = own_state
    c = (DockerContainer(opsd_image).with_command(["--config", str(conf), "daemon"])
         .with_kwargs(network_mode="host")
         .with_volume_mapping(str(ready_stack.root), str(ready_stack.root), "rw"))
    c.start()
    try:
        ctr = c.get_wrapped_container()
        wait_until(lambda: b"daemon.started" in ctr.logs(), timeout=60, what="the daemon in the image started")
        ctr.reload()
        init = int(ctr.attrs["State"]["Pid"])  # the container's PID 1, as this host sees it
        assert _cmdline(init)[:3] == ["/usr/bin/tini", "--", "opsd"]
        kids = Path(f"/proc/{init}/task/{init}/children").read_text().split()
        assert len(kids) == 1 and "daemon" in _cmdline(int(kids[0]))
        for pid in (init, int(kids[0])):
            assert _ids(pid) == _pg_ids() != (0, 0)

        t0 = time.monotonic()
        ctr.stop(timeout=30)
        stopped = time.monotonic() - t0
        ctr.reload()
        assert ctr.attrs["State"]["ExitCode"] == 0 and stopped < 15, (stopped, ctr.logs()[-2000:])
        assert b"daemon.stopped" in ctr.logs()
    finally:
        c.stop()


def _pg_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def _ids(pid: int) -> tuple[int, int]:
    """The effective uid and gid of ``pid``."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["Uid"].split()[1]), int(status["Gid"].split()[1])

