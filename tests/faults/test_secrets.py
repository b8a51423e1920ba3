"""Secrets never leak: a backup, a restore and a drill on a repository encrypted with a cipher passphrase, with
S3 keys configured, while every process's command line is sampled from /proc. The passphrase and the keys
appear in no argv, no log line (opsd's or pgBackRest's) and no report."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import free_port
from opsd_sandbox.stack import S3_KEY, S3_SECRET
from tests.conftest import opsd
from tests.integration.helpers import switch_and_wait

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]

CIPHER = "opsd-cipher-Pa55phrase-4f9a"
SECRETS = (CIPHER, S3_SECRET, S3_KEY)


@pytest.fixture(scope="module")
def cipher_stack() -> Iterator[Sandbox]:
    sb = Sandbox.create(prefix="opsd-test-cipher-", archiving=False, cipher_pass=CIPHER)
    try:
        sb.up()
        yield sb
    finally:
        sb.down(remove=True)


class CmdlineSampler:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for p in Path("/proc").iterdir():
                if p.name.isdigit():
                    try:
                        self.seen.add((p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        continue
            self._stop.wait(0.02)

    def __enter__(self) -> CmdlineSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def test_no_secret_in_argv_logs_or_reports(cipher_stack: Sandbox, tmp_path: Path) -> None:
    sb = cipher_stack
    outputs: list[str] = []

    def run(*args: str, ok: bool = True) -> str:
        res = opsd(sb.opsd_conf, "--log-level", "debug", *args)
        outputs.extend([res.stdout, res.stderr])
        if ok:
            assert res.returncode == 0, res.stderr[-3000:]
        return res.stdout

    with CmdlineSampler() as sampler:
        run("setup", "--restart")
        run("backup", "--type", "full")
        run("drill", "heartbeat")
        switch_and_wait(sb)
        drill = json.loads(run("drill", "run", "--target", "latest", "--json"))
        assert drill["passed"] and drill["checks"]  # the encrypted repository really restores
        run("restore", "--to-time", drill["target"], "--target-dir", str(sb.root / "r"), "--port",
            str(free_port()), "--json")
        run("verify")
        # the read-only commands at once (each is a separate process the sampler sees, as before)
        reports = {fmt: sb.root / f"report.{fmt}" for fmt in ("md", "html", "json")}
        with ThreadPoolExecutor(max_workers=4) as pool:
            done = [pool.submit(run, "report", "--month", drill["target"][:7], "--format", fmt, "--output", str(path))
                    for fmt, path in reports.items()] + [pool.submit(run, "config", "show")]
            for future in done:
                future.result()
        outputs.extend(path.read_text() for path in reports.values())
        run("check", ok=False)  # exit 1 is fine: no drill/verify schedule judgement matters here
    assert len(sampler.seen) > 50  # the sampler really saw the run's processes
    assert any("pgbackrest" in c and "restore" in c for c in sampler.seen)
    pgbr_logs = [p.read_text(errors="replace") for p in (sb.root / "pgbr" / "log").glob("*.log")]
    assert pgbr_logs
    for secret in SECRETS:
        assert not [c for c in sampler.seen if secret in c], f"{secret[:6]}... in a command line"
        assert not [o for o in outputs if secret in o], f"{secret[:6]}... in opsd's output or a report"
        assert not [t for t in pgbr_logs if secret in t], f"{secret[:6]}... in a pgBackRest log"
