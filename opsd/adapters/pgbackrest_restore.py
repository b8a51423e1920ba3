"""pgBackRest's restore command line (pure, tested by equality): the target, the recovery options, and where
the files go (a side copy never writes to a production path: tablespaces mapped under its own directory, links
restored as directories)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

TABLESPACE_FILE = re.compile(r"^pg_tblspc/(\d+)/[^=]*=(\{.*\})$")


@dataclass(frozen=True)
class Tablespace:
    """A tablespace of a backup, from its manifest (``pgbackrest info --set``)."""

    name: str
    oid: int
    location: str  # where it was in production when the backup was taken


@dataclass(frozen=True)
class RestoreOptions:
    """What a restore command line says. Exactly one target kind; ``set`` pins the backup set."""

    pg1_path: str
    set: str | None = None
    target_type: str = "time"  # time | lsn | xid | name | immediate | default (end of WAL)
    target: str | None = None
    exclusive: bool = False  # stop just before the target (an xid: before it commits)
    target_action: str = "promote"  # promote | pause | shutdown
    target_timeline: str | None = None
    port: int | None = None
    archive_off: bool = True
    delta: bool = False
    lock_path: str | None = None
    spool_path: str | None = None
    process_max: int | None = None
    # written into the copy's postgresql.auto.conf, where ALTER SYSTEM (and so 'opsd setup') can change them later
    recovery_options: tuple[tuple[str, str], ...] = ()
    prefix: tuple[str, ...] = ()  # what pgBackRest runs under (nice, ionice beside production)
    # a side copy: every tablespace of the backup under this directory (<dir>/<name>), never at its production
    # location; and symlinks in the backup (a pg_wal link) restored as plain directories, whatever
    # pgbackrest.conf says (link-all, link-map, tablespace-map: a drill host's config may aim them at production)
    tablespace_root: str | None = None
    tablespaces: tuple[Tablespace, ...] = ()


def restore_argv(base: list[str], o: RestoreOptions) -> list[str]:
    """``pgbackrest ... restore`` for ``o``, after ``base`` (the binary, config and stanza)."""
    if o.target_type not in ("time", "lsn", "xid", "name", "immediate", "default"):
        raise ValueError(f"unknown target type {o.target_type!r}")
    if (o.target is None) != (o.target_type in ("immediate", "default")):
        raise ValueError(f"target type {o.target_type!r} {'takes no' if o.target else 'needs a'} target value")
    if o.target_action not in ("promote", "pause", "shutdown"):
        raise ValueError(f"unknown target action {o.target_action!r}")
    if o.exclusive and o.target_type not in ("time", "lsn", "xid"):
        raise ValueError(f"--target-exclusive does not apply to a {o.target_type!r} target")
    argv = [*base, "--log-level-console=detail", f"--pg1-path={o.pg1_path}"]
    if o.target_type != "default":
        argv += [f"--type={o.target_type}", f"--target-action={o.target_action}"]
    optional = [
        (o.set, f"--set={o.set}"), (o.target is not None, f"--target={o.target}"),
        (o.target_timeline, f"--target-timeline={o.target_timeline}"), (o.archive_off, "--archive-mode=off"),
        (o.port is not None, f"--recovery-option=port={o.port}"), (o.delta, "--delta"),
        (o.lock_path, f"--lock-path={o.lock_path}"), (o.spool_path, f"--spool-path={o.spool_path}"),
        (o.process_max, f"--process-max={o.process_max}"), (o.exclusive, "--target-exclusive"),
    ]
    extra = [f"--recovery-option={k}={v}" for k, v in o.recovery_options]
    return [*o.prefix, *argv, *(arg for cond, arg in optional if cond), *extra, *_layout(o), "restore"]


def _layout(o: RestoreOptions) -> list[str]:
    if o.tablespace_root is None:
        return []
    root = o.tablespace_root.rstrip("/")
    return [f"--tablespace-map-all={root}", *(f"--tablespace-map={t.name}={root}/{t.name}" for t in o.tablespaces),
            "--no-link-all", "--reset-link-map"]


def tablespace_bytes(manifest: str) -> dict[int, int]:
    """Bytes per tablespace OID, from a backup's manifest (``[target:file]``: ``pg_tblspc/<oid>/...={"size":..}``)."""
    out: dict[int, int] = {}
    section = ""
    for line in manifest.splitlines():
        if line.startswith("["):
            section = line.strip()
            continue
        m = TABLESPACE_FILE.match(line) if section == "[target:file]" else None
        if m:
            try:
                size = int(json.loads(m.group(2)).get("size", 0))
            except (ValueError, TypeError):
                raise ValueError(f"unreadable manifest line for {line.split('=', 1)[0]}") from None
            out[int(m.group(1))] = out.get(int(m.group(1)), 0) + size
    return out
