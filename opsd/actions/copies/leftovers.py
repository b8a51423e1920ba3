"""Copies that outlived their job, found and removed: ``opsd check`` names each (one line, with the command
that cleans it), ``opsd scratch clean`` removes them, and the daemon removes them when it starts."""

from __future__ import annotations

from collections.abc import Callable

from opsd.actions.copies import registry
from opsd.actions.copies.room import refuse_unsafe_scratch
from opsd.adapters import files
from opsd.context import Context
from opsd.core.records.checks import CRITICAL, OK, WARNING, CheckResult
from opsd.core.records.copies import CopyVerdict
from opsd.errors import OpsdError
from opsd.log import get_logger

NAME = "scratch.copies"


def clean(ctx: Context, *, everything: bool, report: Callable[[str], None]) -> list[CopyVerdict]:
    """``opsd scratch clean [--all]``: under the drill lock (never while a copy's job runs), the leftovers, and
    with ``everything`` the kept copies too."""
    refuse_unsafe_scratch(ctx)
    with files.exclusive_lock(ctx.lock_dir, "drill", ctx.settings.opsd.run_as, "opsd scratch clean"):
        return registry.clean(ctx, everything=everything, report=report)


def _line(v: CopyVerdict) -> str:
    r = v.record
    what = f"{r.purpose} copy of {r.stanza}" if r.purpose != "unknown" else "a copy"
    port = f", port {r.port}" if r.port else ""
    return f"{r.directory} ({what}{port}): {v.why}"


def check_results(ctx: Context) -> list[CheckResult]:
    """One critical result per leftover copy (orphaned or expired) with its cleanup command; kept copies are a
    warning (production's data outside production, until their expiry)."""
    try:
        found = registry.verdicts(ctx)
    except OpsdError as e:
        return [CheckResult(NAME, CRITICAL, f"cannot read the copies of production: {e}")]
    out = [CheckResult(f"{NAME}.{v.record.id}", CRITICAL, f"leftover copy of production {_line(v)}; run "
                                                          "'opsd scratch clean'",
                       {"directory": v.record.directory, "state": v.state, "port": v.record.port})
           for v in found if v.leftover]
    out += [CheckResult(f"{NAME}.{v.record.id}", WARNING, f"kept copy of production {_line(v)}; 'opsd scratch "
                                                          "clean --all' removes it now")
            for v in found if v.state == "kept"]
    if not out:
        running = [v for v in found if v.state == "running"]
        out.append(CheckResult(NAME, OK, f"{len(running)} copy of production running, no leftover" if running
                               else "no copy of production on this host"))
    return out


def reap_at_start(ctx: Context) -> list[CopyVerdict]:
    """The daemon starting: remove what crashed or expired copies left (a drill running from the CLI holds the
    lock: then the next copy or 'opsd check' finds them). Loud either way."""
    log = get_logger()
    try:
        gone = clean(ctx, everything=False, report=lambda m: log.warning("copy.leftover", message=m))
    except OpsdError as e:
        log.error("copy.reap_failed", error=str(e), hint="opsd check names every leftover copy")
        return []
    return gone
