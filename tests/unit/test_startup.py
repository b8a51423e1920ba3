"""'opsd --version' and 'opsd status' start fast because they import only what they use: no psycopg, boto3,
plumbum or APScheduler's scheduler, and (for --version) no pydantic at all. Timings live in bench/; this checks
the imports, which is what makes the time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HEAVY = ("psycopg", "boto3", "botocore", "plumbum", "apscheduler.schedulers", "opsd.db", "opsd.report.jsonout",
         "opsd.adapters.pgbackrest", "opsd.actions.backup", "opsd.actions.drill", "rich")
PROBE = """
import sys
sys.argv = ["opsd", *sys.argv[1:]]
from opsd.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] if not m.startswith("opsd") else m for m in sys.modules
                if m.startswith(HEAVY) and sys.modules[m] is not None})
print("IMPORTED", heavy, file=sys.stderr)
"""


def _imported(*args: str) -> list[str]:
    code = f"HEAVY = {HEAVY!r}\n" + PROBE
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                         check=False)
    line = next(x for x in res.stderr.splitlines() if x.startswith("IMPORTED"))
    return list(ast.literal_eval(line.removeprefix("IMPORTED ")))


def test_version_imports_nothing_heavy_not_even_pydantic() -> None:
    got = _imported("--version")
    assert got == []
    code = ("import sys; sys.argv=['opsd','--version']\nfrom opsd.cli import main\n"
            "try: main()\nexcept SystemExit: pass\nprint('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().endswith("False")


def test_status_reads_the_history_without_database_or_cloud_libraries(tmp_path: Path) -> None:
    conf = tmp_path / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{tmp_path / "state"}"\nrun_as = "root"\n')
    assert _imported("--config", str(conf), "status") == []
