"""Every value opsd puts into a command a shell runs is quoted for that shell or refused with one line (issue 33).

The commands are built with hostile values ($(), backquotes, ; | &, newlines, quotes, %, non-ASCII), then run the
way PostgreSQL runs them: its %-escapes replaced first, then ``/bin/sh -c``. The program they start is a tiny
fake ``pgbackrest`` that writes its argv into a file. Either the builder refused the value (one line), or the
value arrives in argv exactly as configured; the payload never runs (its marker file never appears). Alert
commands are an argv (shlex-split, no shell): metacharacters stay literal there too."""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsd.adapters.alert_channels import command
from opsd.adapters.pgbackrest import Base, archive_push_command
from opsd.adapters.pgbackrest_prefetch import Prefetch, archive_get_command
from opsd.adapters.runner import ProcessRunner
from opsd.errors import UnsafeShellValue

ROOM = Path(tempfile.mkdtemp(prefix="opsd-shell-"))
atexit.register(shutil.rmtree, ROOM, True)
MARKER = ROOM / "pwned"
FAKE = ROOM / "pgbackrest"
FAKE.write_text('#!/bin/sh\nfor a in "$0" "$@"; do printf \'%s\\0\' "$a"; done > "${ARGV_OUT:-' + str(ROOM / "argv")
       + '}"\n')
FAKE.chmod(0o755)
PAYLOADS = [f"$(touch {MARKER})", f"`touch {MARKER}`", f";touch {MARKER}", f"|touch {MARKER}", f"&touch {MARKER}",
            f"\ntouch {MARKER}", f"' ; touch {MARKER} ; '", f'" ; touch {MARKER} ; "', "%", "%p", "%%", "%f", "\\",
            "é", "日本", " ", "$HOME", "*", "~", "#", "'", '"', "\t", "/srv/pg"]
HOSTILE = st.lists(st.one_of(st.sampled_from(PAYLOADS), st.text(min_size=1, max_size=6)), min_size=1,
                   max_size=5).map("".join).filter(lambda s: "\x00" not in s)
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pg_substitute(cmd: str, path: str, name: str) -> str:
    """PostgreSQL 15's BuildRestoreCommand/archive percent replacement: %p, %f, %r, %% -> %, any other % kept."""
    out, i = [], 0
    while i < len(cmd):
        if cmd[i] == "%" and i + 1 < len(cmd) and cmd[i + 1] in "pfr%":
            out.append({"p": path, "f": name, "r": "000000010000000000000001", "%": "%"}[cmd[i + 1]])
            i += 2
        else:
            out.append(cmd[i])
            i += 1
    return "".join(out)


def run_sh(cmd: str) -> list[str]:
    """``cmd`` after PostgreSQL's substitution, through /bin/sh -c: the argv the fake pgbackrest got."""
    out = ROOM / "argv"
    out.unlink(missing_ok=True)
    MARKER.unlink(missing_ok=True)
    shell = pg_substitute(cmd, "pg_wal/RECOVERYXLOG", "000000010000000000000002")
    subprocess.run(["/bin/sh", "-c", shell], cwd=ROOM, env={**os.environ, "ARGV_OUT": str(out)}, timeout=10,
                   check=False, capture_output=True)
    assert not MARKER.exists(), f"the payload ran: {cmd!r}"
    return out.read_bytes().decode().split("\0")[:-1] if out.exists() else []


@FUZZ
@given(config=HOSTILE)
def test_archive_command_quotes_every_value_or_refuses_it(config: str) -> None:
    try:
        cmd = archive_push_command(Base(str(FAKE), config, "main"))
    except UnsafeShellValue as e:
        assert "\n" not in str(e) and ("\n" in config or any(ord(c) < 32 or ord(c) == 127 for c in config))
        return
    assert run_sh(cmd) == [str(FAKE), f"--config={config}", "--stanza=main", "archive-push", "pg_wal/RECOVERYXLOG"]


@FUZZ
@given(spool=HOSTILE, pg1=HOSTILE)
def test_the_prefetch_restore_command_passes_paths_literally_or_refuses_them(spool: str, pg1: str) -> None:
    try:
        cmd = archive_get_command(Base(str(FAKE), "/etc/pgbackrest.conf", "main"), pg1, None,
                                  Prefetch(spool, 16 * 1024**2, 2))
    except UnsafeShellValue as e:
        assert "\n" not in str(e)
        return
    # pgBackRest writes it as restore_command = '...' without escaping: a plain command holds no quote at all
    assert "'" not in cmd and "\n" not in cmd
    got = run_sh(cmd)
    assert f"--pg1-path={pg1}" in got and f"--spool-path={spool}" in got
    assert got[-3:] == ["archive-get", "000000010000000000000002", "pg_wal/RECOVERYXLOG"]


@pytest.mark.parametrize("bad", ["$(id)", "`id`", "a;b", "a|b", "a&b", "a b", "it's", "100%", "a\nb"])
def test_the_restore_command_refuses_shell_metacharacters_in_one_line(bad: str) -> None:
    with pytest.raises(UnsafeShellValue, match="cannot hold") as e:
        archive_get_command(Base("pgbackrest", "/etc/pgbackrest.conf", "main"), f"/srv/{bad}", None,
                            Prefetch("/s", 16 * 1024**2, 1))
    assert "\n" not in str(e.value)


def test_a_plain_archive_command_is_unchanged() -> None:
    assert archive_push_command(Base("/usr/bin/pgbackrest", "/etc/pgbackrest/pgbackrest.conf", "main")) == (
        "/usr/bin/pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main archive-push %p")
    assert archive_push_command(Base("pgbackrest", "/etc/pg br/100%.conf", "main")) == (
        "pgbackrest '--config=/etc/pg br/100%%.conf' --stanza=main archive-push %p")


@settings(max_examples=30, deadline=None)
@given(arg=HOSTILE)
def test_alert_commands_run_without_a_shell_so_metacharacters_stay_literal(arg: str) -> None:
    out = ROOM / "argv"
    out.unlink(missing_ok=True)
    MARKER.unlink(missing_ok=True)
    command(ProcessRunner(), f"{FAKE} {shlex.quote(arg)}", {"alert": "x"}, timeout=10)
    assert not MARKER.exists()
    assert out.read_bytes().decode().split("\0")[:-1] == [str(FAKE), arg]
