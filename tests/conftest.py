"""Shared fixtures.

Unit tests (tests/unit) need nothing but Python. Integration tests (tests/integration) get one real stack
per session: PostgreSQL 15 run as ``postgres``, a TLS S3 endpoint (moto behind nginx), pgBackRest 2.45.
Everything is torn down at the end, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from opsd import settings as settings_mod
from opsd.adapters.stores.runs import History
from opsd.context import Context
from opsd.core.role import NodeRole, Role
from tests.fakes import FakeRunner

# CI replays the same examples every run (a fuzzer's new find must not turn main red at random); a developer's
# run explores new ones (HYPOTHESIS_PROFILE=ci to replay CI's).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))

REPO = Path(__file__).resolve().parent.parent
os.environ["OPSD_STRICT_JSON"] = "1"  # a --json value of another shape than its documented type fails the test


@pytest.fixture
def settings_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(**sections: dict[str, Any]) -> settings_mod.Settings:
        data: dict[str, Any] = {"opsd": {"state_dir": str(tmp_path / "state"), "run_as": _me()}}
        for k, v in sections.items():
            data[k] = {**data.get(k, {}), **v}
        return settings_mod.parse(data)

    return make


def _me() -> str:
    """The OS user opsd acts as in unit tests: this user, or 'postgres' when the tests run as root (opsd refuses
    run_as = root, as PostgreSQL does)."""
    import pwd

    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def fake_ctx(settings_factory):  # type: ignore[no-untyped-def]
    def make(runner: FakeRunner | None = None, **sections: dict[str, Any]) -> Context:
        s = settings_factory(**sections)

        def no_db() -> Any:
            raise AssertionError("unit test tried to open a database connection")

        return Context(settings=s, runner=runner or FakeRunner(), connect=no_db,
                       history=History(s.opsd.state_dir, s.opsd.run_as),
                       role=NodeRole(Role.PRIMARY, "test", "a unit test's primary"))

    return make


@pytest.fixture
def hook() -> Any:
    """A local webhook receiver: its URL (with a token in the path) and the alert bodies it got."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/hooks/T0KEN-secret", got
    srv.shutdown()


@contextlib.contextmanager
def serve_get(answer: Callable[[str], tuple[int, bytes]]) -> Iterator[str]:
    """A local HTTP server whose every GET gets ``answer(path)`` (status, body); its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()


# --------------------------------------------------------------------------- integration stack
@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from opsd_sandbox import Sandbox

    sb = Sandbox.create(prefix="opsd-test-", archiving=False)
    try:
        sb.up()
        yield sb
    finally:
        sb.down(remove=os.environ.get("OPSD_KEEP_SANDBOX") != "1")


@pytest.fixture(scope="session")
def ready_stack(stack: Any) -> Any:
    """The stack after 'opsd setup --restart': archiving works and the stanza exists."""
    res = opsd(stack.opsd_conf, "setup", "--restart")
    assert res.returncode == 0, res.stderr
    return stack


def opsd(config: Path | str, *args: str, timeout: float = 300, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point as a separate process, as a DBA would. Whatever it prints for
    ``--json`` is checked against its documented schema (docs/schemas/), so every integration test that reads
    JSON also proves the documentation."""
    res = subprocess.run(
        [sys.executable, "-m", "opsd", "--config", str(config), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO,
    )
    if "--json" in args and res.stdout.lstrip()[:1] in ("{", "["):
        assert_documented(args, res.stdout)
    return res


_SCHEMA_OF = {("drill", "run"): "drill-run", ("drill", "list"): "drill-list", ("drill", "show"): "drill-show",
              ("health", "locks"): "health-sample", ("health", "pool"): "health-sample", ("health",): "health-sample",
              ("health", "sample"): "health-recorded", ("health", "incidents"): "health-incidents",
              ("restore-point", "create"): "restore-point", ("restore-point", "list"): "restore-point-list",
              ("wal", "find"): "wal-find", ("scratch", "list"): "scratch-list", ("rehearse",): "rehearse",
              ("fleet", "status"): "fleet-status"}


def assert_documented(args: tuple[str, ...] | list[str], text: str) -> None:
    """``text`` (what ``opsd *args --json`` printed) is valid against docs/schemas/<command>.json."""
    import json

    import jsonschema

    commands = {"backup", "info", "check", "window", "restore", "drill", "verify", "health", "status", "report",
                "config", "restore-point", "wal", "scratch", "rehearse", "fleet", "indexes", "queries"}
    start = next(i for i, a in enumerate(args) if a in commands)  # global options and their values come first
    words = tuple(a for a in args[start:] if not a.startswith("-"))[:2]
    name = _SCHEMA_OF.get(words) or _SCHEMA_OF.get(words[:1]) or words[0]
    if name == "restore" and "--table" in args:
        name = "restore-table"
    if name == "config":
        return  # config show prints the configuration file's shape (docs/configuration.md)
    schema = json.loads((REPO / "docs" / "schemas" / f"{name}.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.loads(text)))
    assert not errors, f"opsd {' '.join(args)} --json does not match docs/schemas/{name}.json: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:3])


@pytest.fixture(autouse=True)
def _logging() -> None:
    """Fresh structlog config per test, bound to this test's captured stderr."""
    from opsd import log

    log.configure("debug", json=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/faults carries the 'faults' marker and every one under tests/integration the
    'integration' marker, so '-m' selections never silently drop one."""
    missing = []
    for item in items:
        parts = Path(str(item.fspath)).parts
        for folder, marker in (("faults", "faults"), ("integration", "integration")):
            if folder in parts and parts[parts.index(folder) - 1] == "tests" and not item.get_closest_marker(marker):
                missing.append(f"{item.nodeid} lacks @pytest.mark.{marker}")
    if missing:
        raise pytest.UsageError("; ".join(missing))
