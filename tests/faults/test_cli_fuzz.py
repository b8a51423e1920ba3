"""Bad input through the CLI, fuzzed with hypothesis: any --to-time string and any config file give a one-line
error (plus an optional hint) and a documented exit code, never a traceback. In-process through opsd.cli.main,
the same error boundary the console script uses."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta, timezone
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
    progress = [ln for ln in lines if ln.startswith("  ")]  # a long command's steps, before its answer
    lines = [ln for ln in lines if ln not in progress]
    assert all(ln.startswith(("opsd: error:", "hint:", "opsd: aborted")) for ln in lines), lines
    assert sum(ln.startswith("opsd: error:") for ln in lines) <= 1


@pytest.fixture(scope="module")
def conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fuzz")
    p = d / "opsd.toml"
    p.write_text(f'[opsd]\nstate_dir = "{d / "state"}"\nrun_as = "postgres"\n\n[pgbackrest]\nbin = "/bin/false"\n')
    return p


OFFSETS = {"": 0.0, "Z": 0.0, "+01": 1.0, "-13:30": -13.5, " UTC": 0.0}  # " Mars/Base" and "+99" are not offsets


def _valid_time(y: int, mo: int, d: int, h: int, mi: int, tz: str) -> bool:
    """The oracle, built with datetime and not with opsd's parser: a real calendar time with a real offset
    (the fuzz config's timezone is UTC, which has no clock changes), whose instant is in 1970..9998 UTC."""
    if tz not in OFFSETS:
        return False
    try:
        utc = datetime(y, mo, d, h, mi, tzinfo=timezone(timedelta(hours=OFFSETS[tz]))).astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return 1970 <= utc.year <= 9998


STRUCTURED = st.tuples(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                       st.integers(0, 61), st.sampled_from([*OFFSETS, " Mars/Base", "+99"]))


def _restore_dry_run(conf: Path, when: str) -> tuple[int, str]:
    return _run(["--config", str(conf), "restore", "--to-time", when, "--target-dir", "/nonexistent/r", "--port",
                 "5499", "--dry-run"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=STRUCTURED)
def test_to_time_is_accepted_exactly_when_it_is_a_real_time(conf: Path,
                                                            parts: tuple[int, int, int, int, int, str]) -> None:
    y, mo, d, h, mi, tz = parts
    code, err = _restore_dry_run(conf, f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}{tz}")
    _clean(code, err)
    # accepted: the plan goes on to the repository, which fails (pgbackrest is /bin/false): 1; refused: usage, 2
    assert code == (1 if _valid_time(*parts) else 2), err


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(when=st.text(max_size=40))
def test_any_to_time_text_gives_one_line(conf: Path, when: str) -> None:
    code, err = _restore_dry_run(conf, when)
    _clean(code, err)
    assert code in (1, 2)


# (section, key, value) rows with what 'config check' must say of them
GOOD = [("opsd", "timezone", '"Europe/Paris"'), ("opsd", "log_level", '"debug"'), ("drill", "port", "5599"),
        ("check", "max_ready_age", '"20m"'), ("schedule", "full", '"0 2 * * *"'), ("schedule", "incr", '""'),
        ("health", "connections_threshold", "80"), ("drill", "heartbeat_interval", '"0s"'),
        ("pgbackrest", "stanza", '"main-2"'), ("metrics", "listen", '"127.0.0.1:9187"')]
BAD = [("opsd", "timezone", '"Mars/Base"'), ("drill", "port", "0"), ("check", "max_ready_age", '"0s"'),
       ("schedule", "full", '"every day"'), ("nope", "x", "1"), ("opsd", "run_as", '"root"'),
       ("pgbackrest", "stanza", '"bad name"'), ("health", "connections_threshold", "101"), ("opsd", "colour", '"x"'),
       ("postgres", "bin_dir", '"/nonexistent"'), ("drill", "port", "5432")]  # 5432: postgres.port by default


def _toml(rows: list[tuple[str, str, str]]) -> str:
    sections: dict[str, dict[str, str]] = {}
    for section, key, value in rows:
        sections.setdefault(section, {})[key] = value  # the last value of a repeated key wins
    return "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {v}" for k, v in keys.items()) for s, keys in sections.items())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.sampled_from(GOOD + BAD), max_size=6))
def test_config_check_accepts_exactly_the_valid_files(tmp_path_factory: pytest.TempPathFactory,
                                                      rows: list[tuple[str, str, str]]) -> None:
    p = tmp_path_factory.mktemp("cfg") / "opsd.toml"
    p.write_text(_toml(rows))
    final: dict[tuple[str, str], str] = {(s, k): v for s, k, v in rows}
    expected_bad = [(s, k) for (s, k), v in final.items() if (s, k, v) in BAD]
    code, err = _run(["--config", str(p), "config", "check"])
    _clean(code, err, report=True)
    assert code == (3 if expected_bad else 0), (rows, err)
    for section, key in expected_bad:  # every problem is named with its key path
        assert f"{section}.{key}" in err or (section == "nope" and "nope: unknown key" in err), (rows, err)
    if code == 3:  # any other command says it in one line, with the same exit code
        code2, err2 = _run(["--config", str(p), "status"])
        _clean(code2, err2)
        assert code2 == 3


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=200))
def test_any_config_text_gives_one_report(tmp_path_factory: pytest.TempPathFactory, body: str) -> None:
    p = tmp_path_factory.mktemp("cfg") / "opsd.toml"
    p.write_text(body)
    code, err = _run(["--config", str(p), "config", "check"])
    _clean(code, err, report=True)
    assert code in (0, 3)
