"""pgBackRest's restore command line (pure, tested by equality): the target, the recovery options, and where
the files go (a side copy never writes to a production path: tablespaces mapped under its own directory, links
restored as directories)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

TABLESPACE_FILE = re.compile(r"^pg_tblspc/(\d+)/[^=]*=(\{.*\})$")
# a file of one database: pg_data/base/<db oid>/..., or pg_tblspc/<tablespace oid>/<version dir>/<db oid>/...
DATABASE_FILE = re.compile(r"^(?:pg_data/base/(\d+)/|pg_tblspc/\d+/[^/]+/(\d+)/)[^=]*=(\{.*\})$")
DATABASE_LINE = re.compile(r"^([^=]+)=(\{.*\})$")


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
    # a partial restore: only these user databases (--db-include), or every user database but these
    # (--db-exclude); the others come back as sparse, zeroed files. template0, template1 and postgres always come.
    db_include: tuple[str, ...] = ()
    db_exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseBytes:
    """One database of a backup, from its manifest: its OID and the bytes of its files (tablespaces included)."""

    name: str
    oid: int
    bytes: int


@dataclass(frozen=True)
class ManifestSizes:
    """What a backup restores, from its manifest: every file's bytes, and each database's share of them."""

    total: int
    databases: tuple[DatabaseBytes, ...]

    def of(self, name: str) -> DatabaseBytes | None:
        return next((d for d in self.databases if d.name == name), None)


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
    dbs = [*(f"--db-include={d}" for d in o.db_include), *(f"--db-exclude={d}" for d in o.db_exclude)]
    return [*o.prefix, *argv, *(arg for cond, arg in optional if cond), *extra, *_layout(o), *dbs, "restore"]


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


def _size(line: str, value: str) -> int:
    try:
        return int(json.loads(value).get("size", 0))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"unreadable manifest line for {line.split('=', 1)[0]}") from None


def manifest_sizes(manifest: str) -> ManifestSizes:
    """Bytes of every file, and per database (``[db]``: name -> ``db-id``; ``[target:file]``: the files under
    ``base/<oid>`` and each tablespace's ``<oid>`` directory), from a backup's manifest."""
    names: dict[int, str] = {}
    per_oid: dict[int, int] = {}
    total, section = 0, ""
    for line in manifest.splitlines():
        if line.startswith("["):
            section = line.strip()
        elif section == "[db]" and (m := DATABASE_LINE.match(line)):
            try:
                names[int(json.loads(m.group(2))["db-id"])] = m.group(1)
            except (ValueError, TypeError, KeyError):
                raise ValueError(f"unreadable manifest line for database {m.group(1)}") from None
        elif section == "[target:file]" and "=" in line:
            size = _size(line, line.split("=", 1)[1])
            total += size
            if f := DATABASE_FILE.match(line):
                oid = int(f.group(1) or f.group(2))
                per_oid[oid] = per_oid.get(oid, 0) + size
    if not names:
        raise ValueError("no [db] section (pgBackRest 2.x writes one in every manifest)")
    dbs = tuple(DatabaseBytes(n, oid, per_oid.get(oid, 0)) for oid, n in sorted(names.items(), key=lambda x: x[1]))
    return ManifestSizes(total, dbs)

