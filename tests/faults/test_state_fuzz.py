"""Hostile state files (issue 14, fault 7): the history/alerts file truncated anywhere or overwritten with
random bytes gives one line naming the file and a documented exit code, never a traceback, and a command
that fails on it leaves the file as it found it or sound (never half-migrated, half-written)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
