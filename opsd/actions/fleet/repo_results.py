"""A fleet drill's result in the drilled cluster's own repository, and its import into that cluster's history.

The drill host writes each result as ``opsd/drills/<stanza>/<start, UTC>-<drill host>-<run id>.json`` of the
cluster's repository (:func:`publish`; beside pgBackRest's ``archive/`` and ``backup/``, never inside them). The
cluster's own opsd reads that folder and records every result it does not hold yet as a ``drill`` run of its
history (:func:`import_results`), with the drill host as its host and ``fleet`` as its trigger: ``opsd status``,
``opsd drill list``/``show`` and the monthly report then show the drills that ran elsewhere.

The file is the :class:`FleetDrill` record in the envelope the history keeps records in: ``kind``, ``version``
and ``details``. An import is idempotent: a result is known by its drill host and start time (the run's ``host``
and ``started_at``), looked up in the history itself, so nothing else is remembered, a second import adds
nothing, and two imports at once never record one drill twice. A file that does not read as a fleet drill of this
stanza is counted and named in the report, never imported, never an error for the others.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from opsd.adapters import repo_files
from opsd.context import Context
from opsd.core.fleet.keys import stamp
from opsd.core.records.base import Note, Record
from opsd.core.records.fleet import FleetDrill
from opsd.core.records.runs import OUTCOMES
from opsd.errors import OpsdError
from opsd.log import get_logger

DRILLS = "opsd/drills"
TRIGGER = "fleet"  # the trigger of an imported drill's run
_STAMP = "%Y%m%dT%H%M%S%fZ"  # core/fleet/keys.stamp
_NAME = re.compile(r"(?P<stamp>\d{8}T\d{12}Z)-(?P<host>.+)-(?P<run>\d+)\.json")


@dataclass
class ImportReport:
    """What one import found in ``folder`` (the repository's, without a secret)."""

    folder: str
    found: int = 0  # result files listed
    imported: list[int] = field(default_factory=list)  # the new runs' ids
    already: int = 0  # results the history held before
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, why it was not imported)


def folder(stanza: str) -> str:
    return f"{DRILLS}/{stanza}"


def segment(host: str) -> str:
    """A host name as a file name part."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", host) or "host"


def file_name(fd: FleetDrill) -> str:
    d = fd.drill
    return f"{folder(fd.stanza)}/{stamp(d.started_at)}-{segment(d.host)}-{d.run_id or 0}.json"


def encode(fd: FleetDrill) -> bytes:
    return json.dumps({"kind": fd.KIND, "version": fd.VERSION, "details": fd.as_json()}, indent=1).encode()


def decode(data: bytes) -> FleetDrill:
    """The record in a result file; ValueError (pydantic's too) saying why it is not one."""
    try:
        raw = json.loads(data)
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if not isinstance(raw, dict) or raw.get("kind") != FleetDrill.KIND:
        raise ValueError(f"not a {FleetDrill.KIND} record")
    version, details = raw.get("version"), raw.get("details")
    if not isinstance(version, int) or not isinstance(details, dict):
        raise ValueError("no version or no details")
    return FleetDrill.load(details, version)


def publish(conf: Path, stanza: str, fd: FleetDrill) -> str:
    """Write ``fd`` into the repository ``conf`` describes for ``stanza``; where it went (no secret in it)."""
    if fd.stanza != stanza:
        raise OpsdError(f"a drill of stanza {fd.stanza!r} is not written into the folder of stanza {stanza!r}")
    return repo_files.write(conf, stanza, file_name(fd), encode(fd))


def _named(relpath: str) -> tuple[str, datetime] | None:
    """(host part, start) from a result file's name, to skip reading a result the history holds."""
    m = _NAME.fullmatch(relpath.rsplit("/", 1)[-1])
    if m is None:
        return None
    return m["host"], datetime.strptime(m["stamp"], _STAMP).replace(tzinfo=UTC)


def import_results(ctx: Context) -> ImportReport:
    """Record in this host's history every result under ``opsd/drills/<stanza>/`` it does not hold yet.
    OpsdError when the repository cannot be listed (nothing imported then)."""
    conf, stanza = ctx.settings.pgbackrest.config, ctx.settings.pgbackrest.stanza
    names = [n for n in repo_files.listing(conf, stanza, folder(stanza)) if n.endswith(".json")]
    out = ImportReport(folder=folder(stanza), found=len(names))
    held = {(segment(h), t) for h, t in ctx.history.started("drill", TRIGGER)}
    for name in names:
        if _named(name) in held:
            out.already += 1
            continue
        try:
            fd = _readable(decode(repo_files.read(conf, stanza, name)), stanza)
        except (ValueError, OpsdError) as e:  # this file only (damaged, foreign, pruned meanwhile)
            out.problems.append((name, " ".join(str(e).split())[:200]))
            continue
        if (run_id := _record(ctx, fd)) is None:
            out.already += 1
        else:
            out.imported.append(run_id)
    log = get_logger()
    if out.imported or out.problems:
        (log.warning if out.problems else log.info)(
            "fleet.results_imported", imported=len(out.imported), already=out.already, folder=out.folder,
            unreadable=[n for n, _ in out.problems])
    return out


def _readable(fd: FleetDrill, stanza: str) -> FleetDrill:
    if fd.stanza != stanza:
        raise ValueError(f"a drill of stanza {fd.stanza!r}, not {stanza!r}")
    if fd.drill.outcome not in OUTCOMES or fd.drill.outcome == "running":
        raise ValueError(f"outcome {fd.drill.outcome!r} is not a finished run's")
    return fd


def _record(ctx: Context, fd: FleetDrill) -> int | None:
    d = fd.drill
    details: Record = Note()
    if fd.result is not None:  # its paths are the drill host's: said so in drill show
        details = fd.result.model_copy(update={k: f"{d.host}:{v}" for k in ("log_file", "scratch")
                                               if (v := getattr(fd.result, k))})
    return ctx.history.record_once("drill", TRIGGER, d.started_at, d.finished_at, d.outcome, host=d.host,
                                   error=None if d.passed else (d.summary or f"drill on {d.host}: {d.outcome}"),
                                   details=details)
