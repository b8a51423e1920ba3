"""Hostile state files (issue 14, fault 7): the history/alerts file truncated anywhere or overwritten with
random bytes gives one line naming the file and a documented exit code, never a traceback, and a command
that fails on it leaves the file as it found it or sound (never half-migrated, half-written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsd.adapters.stores.runs import History
from tests.conftest import _me
from tests.faults.test_cli_fuzz import _clean, _run

pytestmark = pytest.mark.faults
V0 = Path(__file__).parent.parent / "data" / "history-v0.sqlite3"
SIZE = V0.stat().st_size


def _state(tmp: Path, data: bytes) -> tuple[Path, Path]:
    state = tmp / "state"
    state.mkdir()
    (state / "history.sqlite3").write_bytes(data)
    conf = tmp / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{state}"\nrun_as = "{_me()}"\n')
    return conf, state / "history.sqlite3"


def _sound(path: Path) -> bool:
    import sqlite3

    with sqlite3.connect(path) as c:
        return bool(c.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, SIZE), at=st.integers(0, SIZE - 1), noise=st.binary(min_size=1, max_size=4096),
       how=st.sampled_from(["truncate", "overwrite", "random"]), command=st.sampled_from([
           ["status"], ["drill", "list"], ["health", "incidents"], ["status", "--json"]]))
def test_a_mangled_state_file_is_one_line_and_is_left_as_it_was(tmp_path_factory: pytest.TempPathFactory,
                                                              cut: int, at: int, noise: bytes, how: str,
                                                              command: list[str]) -> None:
    raw = V0.read_bytes()
    data = {"truncate": raw[:cut], "overwrite": raw[:at] + noise + raw[at + len(noise):],
            "random": noise}[how]
    conf, history = _state(tmp_path_factory.mktemp("state"), data)
    code, err = _run(["--config", str(conf), *command])
    _clean(code, err)
    if "run history" in err:  # refused: the file is named, and never left half-written: as it was, or (it
        assert code == 1 and str(history) in err, err  # passed the integrity check and was migrated) sound
        assert history.read_bytes() == data or _sound(history)
    else:  # adopted (an empty or still readable file): the command's own answer
        assert code in (0, 1) and "internal error" not in err, err
    shutil.rmtree(history.parent)


def _kept_line(n: int) -> bytes:
    """A journal line as opsd writes it: a verify run the history could not take."""
    run = {"job": "verify", "trigger": "schedule", "host": "db1", "pid": 4242, "outcome": "ok", "error": None,
           "started_at": f"2026-11-2{n}T03:00:00+00:00", "finished_at": f"2026-11-2{n}T03:05:00+00:00",
           "details": '{"note": "kept"}', "kind": "note", "version": 1}
    return json.dumps(run).encode()


JUNK_LINES = st.one_of(
    st.binary(max_size=200).filter(lambda b: b"\n" not in b),
    st.sampled_from([b"{}", b"[]", b"1", b"null", b'{"job": 1}', b"\xff\xfe{", _kept_line(1)[:40],
                     _kept_line(1).replace(b'"pid": 4242', b'"pid": 99999999999999999999999'),
                     _kept_line(1).replace(b'"outcome": "ok"', b'"outcome": "exploded"'),
                     _kept_line(1).replace(b"2026-11-21T03:00:00+00:00", b"yesterday"),
                     _kept_line(1).replace(b'"started_at": "2026-11-21T03:00:00+00:00"', b'"started_at": 5'),
                     _kept_line(1).replace(b'"details": "{\\"note\\": \\"kept\\"}"', b'"details": "{not json"')]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(JUNK_LINES, max_size=4), good=st.integers(0, 2), order=st.randoms())
def test_a_mangled_pending_journal_never_stops_a_job_nor_loses_a_kept_run(
        tmp_path_factory: pytest.TempPathFactory, junk: list[bytes], good: int, order: Any) -> None:
    """Runs kept while the history was down sit in history.pending.jsonl: a job that finds it mangled (a line
    cut by a full disk, random bytes, a line of the wrong shape) still runs, writes every sound kept run into
    the history, and sets the rest aside in history.pending.rejected, never dropping them silently."""
    tmp = tmp_path_factory.mktemp("journal")
    state = tmp / "state"
    state.mkdir()
    conf = tmp / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{state}"\nrun_as = "{_me()}"\nrole = "drill"\n\n'  # verify runs
                    f'[pgbackrest]\nbin = "/bin/false"\n\n[postgres]\nhost = "{tmp / "no-socket"}"\nport = 1\n')
    lines = junk + [_kept_line(n + 1) for n in range(good)]
    order.shuffle(lines)
    (state / "history.pending.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    code, err = _run(["--config", str(conf), "verify"])  # a job: fails (pgBackRest is /bin/false), recorded
    _clean(code, err)
    assert code == 1 and "internal error" not in err, err
    code, err = _run(["--config", str(conf), "status", "--json"])
    _clean(code, err)
    history = History(state, _me())
    kept = [r for r in history.runs("verify", limit=50) if r.host == "db1"]
    assert len(kept) == good, (lines, kept)
    assert not (state / "history.pending.jsonl").exists()
    rejected = state / "history.pending.rejected"
    bad = [ln for ln in lines if ln not in {_kept_line(n + 1) for n in range(good)} and ln.strip()]
    assert (rejected.read_bytes().count(b"\n") if rejected.exists() else 0) == len(bad), (lines, err)
    shutil.rmtree(tmp)
