"""Bad input through the CLI, fuzzed with hypothesis: any --to-time string and any config file give a one-line
error (plus an optional hint) and a documented exit code, never a traceback. In-process through opsd.cli.main,
the same error boundary the console script uses."""

from __future__ import annotations

import contextlib
import io
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsd.cli import main

DOCUMENTED = {0, 1, 2, 3, 4, 5}
pytestmark = pytest.mark.faults


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
    return code, err.getvalue()


def _clean(code: int, stderr: str, *, report: bool = False) -> None:
    """One 'opsd: error:' line (and a hint) at most. ``report``: 'config check' lists every problem instead,
    a header line and one indented line per problem (its documented output)."""
    assert code in DOCUMENTED, (code, stderr)
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("{")]  # JSON log events aside
    if report and lines:
        assert lines[0].startswith("config ") and lines[0].endswith("problem(s)"), lines
        assert all(ln.startswith("  ") for ln in lines[1:]), lines
        return
    assert all(ln.startswith(("opsd: error:", "hint:", "opsd: aborted")) for ln in lines), lines
    assert sum(ln.startswith("opsd: error:") for ln in lines) <= 1


@pytest.fixture(scope="module")
def conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fuzz")
    p = d / "opsd.toml"
    p.write_text(f'[opsd]\nstate_dir = "{d / "state"}"\nrun_as = "postgres"\n\n[pgbackrest]\nbin = "/bin/false"\n')
    return p


TIMES = st.one_of(
    st.text(max_size=40),
    st.builds(lambda y, mo, d, h, mi, tz: f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}{tz}",
              st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
              st.sampled_from(["", "Z", "+01", "-13:30", " UTC", " Mars/Base", "+99"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(when=TIMES)
def test_any_to_time_string(conf: Path, when: str) -> None:
    code, err = _run(["--config", str(conf), "restore", "--to-time", when, "--target-dir", "/nonexistent/r",
                      "--port", "5499", "--dry-run"])
    _clean(code, err)
    assert code in (1, 2, 5)  # usage (bad time), or the repository (a /bin/false pgbackrest) fails: one line


KEYS = st.sampled_from(["opsd", "pgbackrest", "postgres", "schedule", "drill", "health", "report", "alerts",
                        "metrics", "pgbouncer", "check", "daemon", "nope"])
VALUES = st.one_of(st.text(string.printable, max_size=12).map(lambda s: '"' + s.strip("\\").replace('"', "") + '"'),
                   st.integers(-5, 10**6).map(str), st.sampled_from(["true", "[]", '["x"]', "1.5", "{}", '"1h"']))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.text(max_size=200),
    st.lists(st.tuples(KEYS, st.text(string.ascii_lowercase + "_", min_size=1, max_size=24), VALUES),
             max_size=6).map(lambda rows: "\n".join(f"[{s}]\n{k} = {v}" for s, k, v in rows)),
))
def test_any_config_file(tmp_path_factory: pytest.TempPathFactory, body: str) -> None:
    p = tmp_path_factory.mktemp("cfg") / "opsd.toml"
    p.write_text(body)
    code, err = _run(["--config", str(p), "config", "check"])
    _clean(code, err, report=True)
    assert code in (0, 3)
    if code == 3:  # any other command says it in one line, with the same exit code
        code2, err2 = _run(["--config", str(p), "status"])
        _clean(code2, err2)
        assert code2 == 3
