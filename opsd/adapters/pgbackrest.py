"""pgBackRest: pure argv builders (tested by equality), parsers of its output, and a thin executor.

Secrets never go on the command line (pgBackRest refuses them there anyway): they stay in the DBA's
pgbackrest.conf or in ``PGBACKREST_*`` environment variables, which pass through to the child.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from opsd.adapters import pgbackrest_ahead as ahead
from opsd.adapters.pgbackrest_errors import to_error
from opsd.adapters.pgbackrest_restore import RestoreOptions, Tablespace, restore_argv
from opsd.adapters.pgbackrest_verify import parse_verify
from opsd.adapters.runner import Completed, Runner
from opsd.core.records.jobs import VerifyResult
from opsd.core.shell import sh_word
from opsd.core.wal import ArchivedSegment, parse_segment
from opsd.errors import RepositoryError

BACKUP_TYPES = ("full", "diff", "incr")


# --------------------------------------------------------------------------- argv builders (pure)
@dataclass(frozen=True)
class Base:
    """What every pgBackRest command line starts with."""

    bin: str
    config: str
    stanza: str

    def argv(self) -> list[str]:
        return [self.bin, f"--config={self.config}", f"--stanza={self.stanza}"]


def backup_cmd(base: Base, backup_type: str, *, start_fast: bool = True, from_standby: bool = False) -> list[str]:
    if backup_type not in BACKUP_TYPES:
        raise ValueError(f"backup type must be one of {', '.join(BACKUP_TYPES)}, not {backup_type!r}")
    argv = [*base.argv(), "--log-level-console=info", f"--type={backup_type}"]
    if start_fast:
        argv.append("--start-fast")
    if from_standby:
        argv.append("--backup-standby")
    return [*argv, "backup"]


def info_cmd(base: Base, *, io_timeout: float | None = None, backup_set: str | None = None) -> list[str]:
    argv = [*base.argv(), "--output=json", "--log-level-console=warn"]
    if io_timeout is not None:
        argv.append(f"--io-timeout={max(io_timeout, 0.1):g}")
    if backup_set is not None:
        argv.append(f"--set={backup_set}")
    return [*argv, "info"]


def check_cmd(base: Base, *, io_timeout: float | None = None, archive_timeout: float | None = None) -> list[str]:
    argv = [*base.argv(), "--log-level-console=info"]
    if io_timeout is not None:
        argv.append(f"--io-timeout={max(io_timeout, 0.1):g}")
    if archive_timeout is not None:
        argv.append(f"--archive-timeout={max(archive_timeout, 0.1):g}")
    return [*argv, "check"]


def stanza_create_cmd(base: Base) -> list[str]:
    return [*base.argv(), "--log-level-console=info", "stanza-create"]


def expire_cmd(base: Base) -> list[str]:
    return [*base.argv(), "--log-level-console=info", "expire"]


def verify_cmd(base: Base, *, backup_set: str | None = None) -> list[str]:
    """Report on stdout, damaged files named in the log on stderr (see pgbackrest_verify)."""
    argv = [*base.argv(), "--output=text", "--verbose", "--log-level-console=off", "--log-level-stderr=info"]
    if backup_set:
        argv.append(f"--set={backup_set}")
    return [*argv, "verify"]


def archive_push_command(base: Base) -> str:
    """PostgreSQL's ``archive_command`` for this stanza: each value a shell word (see opsd/core/shell.py)."""
    return " ".join(sh_word("archive_command", w) for w in base.argv()) + " archive-push %p"


# --------------------------------------------------------------------------- parsed output
@dataclass(frozen=True)
class BackupInfo:
    label: str
    type: str
    start: datetime
    stop: datetime
    size: int  # database size (bytes)
    delta: int  # bytes copied by this backup
    repo_size: int  # compressed size in the repository of the whole set
    repo_delta: int  # compressed bytes this backup added
    wal_start: str | None
    wal_stop: str | None
    lsn_start: str | None
    lsn_stop: str | None
    prior: str | None
    reference: tuple[str, ...]
    error: bool
    archive_id: str | None = None  # "<major>-<db id>": where this backup's WAL is archived
    # from its manifest: pgBackRest lists them only for one set ('info --set'); None: not asked
    tablespaces: tuple[Tablespace, ...] | None = None


    @property
    def duration(self) -> float:
        return (self.stop - self.start).total_seconds()


@dataclass(frozen=True)
class ArchiveRange:
    id: str  # e.g. "15-1"
    min: str | None
    max: str | None


@dataclass(frozen=True)
class StanzaInfo:
    name: str
    status_code: int
    status_message: str
    lock_held: bool
    backups: tuple[BackupInfo, ...]
    archives: tuple[ArchiveRange, ...]
    repo_messages: tuple[str, ...]
    system_ids: tuple[tuple[str, int], ...] = ()  # archive id -> the cluster's system identifier ('db' list)

    @property
    def ok(self) -> bool:
        """Usable: 0 ok, or 2 'no valid backups' (a new stanza). Other codes mean the repository is not
        readable (1 missing stanza path, 3 missing stanza data, 4 cipher mismatch, 5 db mismatch, 99 other)."""
        return self.status_code in (0, 2)

    @property
    def current_archive_id(self) -> str | None:
        """The archive id of the newest database generation (the one archive-get reads)."""
        ids = [a.id for a in self.archives if a.id.rsplit("-", 1)[-1].isdigit()]
        return max(ids, key=lambda i: int(i.rsplit("-", 1)[-1]), default=None)

    @property
    def current_system_id(self) -> int | None:
        """The current archive id's cluster: a stanza created again reuses archive id 15-1, not this."""
        return dict(self.system_ids).get(self.current_archive_id or "")

    def newest(self, types: Sequence[str] = BACKUP_TYPES) -> BackupInfo | None:
        good = [b for b in self.backups if b.type in types and not b.error]
        return max(good, key=lambda b: b.stop) if good else None


def _ts(epoch: int | None) -> datetime:
    return datetime.fromtimestamp(epoch or 0, tz=UTC)


def _backup(b: dict[str, Any], versions: dict[int, str]) -> BackupInfo:
    info = b.get("info") or {}
    repo = info.get("repository") or {}
    archive = b.get("archive") or {}
    lsn = b.get("lsn") or {}
    ts = b.get("timestamp") or {}
    return BackupInfo(
        label=b["label"], type=b["type"], start=_ts(ts.get("start")), stop=_ts(ts.get("stop")),
        size=int(info.get("size") or 0), delta=int(info.get("delta") or 0),
        repo_size=int(repo.get("size") or 0), repo_delta=int(repo.get("delta") or 0),
        wal_start=archive.get("start"), wal_stop=archive.get("stop"),
        lsn_start=lsn.get("start"), lsn_stop=lsn.get("stop"),
        prior=b.get("prior"), reference=tuple(b.get("reference") or ()), error=bool(b.get("error", False)),
        archive_id=_archive_id(b.get("database"), versions),
        tablespaces=_tablespaces(b["tablespace"]) if "tablespace" in b else None,
    )


def _tablespaces(items: list[dict[str, Any]] | None) -> tuple[Tablespace, ...]:
    return tuple(Tablespace(name=str(t["name"]), oid=int(t["oid"]), location=str(t["destination"]))
                 for t in items or ())


def _archive_id(database: dict[str, Any] | None, versions: dict[int, str]) -> str | None:
    db_id = (database or {}).get("id")
    return f"{versions[db_id]}-{db_id}" if db_id in versions else None


def _system_ids(dbs: Sequence[dict[str, Any]]) -> tuple[tuple[str, int], ...]:
    return tuple((f"{d.get('version')}-{d['id']}", int(d["system-id"])) for d in dbs
                 if "id" in d and str(d.get("system-id", "")).isdigit())


def parse_info(text: str) -> list[StanzaInfo]:
    """Parse ``pgbackrest info --output=json``. Raises ValueError on malformed output."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"pgbackrest info did not return JSON: {e}") from None
    if not isinstance(data, list):
        raise ValueError("pgbackrest info JSON is not a list of stanzas")
    out = []
    for st in data:
        status = st.get("status") or {}
        lock = ((status.get("lock") or {}).get("backup") or {}).get("held", False)
        repos = tuple(
            f"repo{r.get('key')}: {(r.get('status') or {}).get('message', '')}" for r in st.get("repo") or ()
            if (r.get("status") or {}).get("code", 0) != 0
        )
        versions = {int(d["id"]): str(d.get("version")) for d in st.get("db") or () if "id" in d}
        out.append(StanzaInfo(
            name=st.get("name", "?"), status_code=int(status.get("code", 99)),
            status_message=str(status.get("message", "")), lock_held=bool(lock),
            backups=tuple(sorted((_backup(b, versions) for b in st.get("backup") or ()), key=lambda b: b.stop)),
            archives=tuple(ArchiveRange(a.get("id", "?"), a.get("min"), a.get("max")) for a in st.get("archive") or ()),
            repo_messages=repos, system_ids=_system_ids(st.get("db") or ()),
        ))
    return out


# --------------------------------------------------------------------------- executor
T = TypeVar("T")




@dataclass
class PgBackRest:
    base: Base
    runner: Runner
    backup_timeout: float
    command_timeout: float
    probe_io_timeout: float

    def _run(self, argv: list[str], command: str, timeout: float,
             on_line: Callable[[str, str], None] | None = None, log_output: bool = True) -> Completed:
        res = self.runner.run(argv, timeout=timeout, on_line=on_line, log_output=log_output)
        if not res.ok:
            raise to_error(res.returncode, res.stdout, res.stderr, res.argv, command)
        return res

    def backup(self, backup_type: str, on_line: Callable[[str, str], None] | None = None, *,
               from_standby: bool = False) -> Completed:
        return self._run(backup_cmd(self.base, backup_type, from_standby=from_standby), "backup",
                         self.backup_timeout, on_line)

    def info_ahead(self, backup_set: str) -> None:
        """Start ``info --set`` for a set in the background: the next ``info(backup_set)`` within a minute takes
        its answer (a restore plan reads the WAL and the destination meanwhile, then asks for the chosen set)."""
        ahead.start((self.base.config, self.base.stanza, backup_set), lambda: self._info(backup_set))

    def info(self, backup_set: str | None = None) -> StanzaInfo:
        """The stanza's info (``backup_set``: with that set's manifest details, its tablespaces); raises
        RepositoryError when pgBackRest says the repository is not usable."""
        got = ahead.take((self.base.config, self.base.stanza, backup_set)) if backup_set else None
        if got is not None:
            return cast(StanzaInfo, got.result())
        return self._info(backup_set)

    def _info(self, backup_set: str | None) -> StanzaInfo:
        res = self._run(info_cmd(self.base, io_timeout=self.probe_io_timeout, backup_set=backup_set), "info",
                        self.command_timeout, log_output=False)
        try:
            stanzas = parse_info(res.stdout)
        except ValueError as e:
            raise RepositoryError(str(e)) from None
        st = next((s for s in stanzas if s.name == self.base.stanza), None)
        if st is None:
            raise RepositoryError(f"stanza {self.base.stanza!r} not found in pgbackrest info output")
        if not st.ok:
            detail = "; ".join(st.repo_messages) or st.status_message
            raise RepositoryError(
                f"repository for stanza {st.name!r} is not usable (status {st.status_code}): {detail}",
                hint="check the S3 endpoint, bucket and credentials in pgbackrest.conf; "
                     "run 'opsd setup' for a new stanza",
            )
        return st

    def check(self, archive_timeout: float | None = None) -> Completed:
        """``archive_timeout``: how long pgBackRest waits for the switched segment (its default is 60 s)."""
        argv = check_cmd(self.base, io_timeout=self.probe_io_timeout, archive_timeout=archive_timeout)
        return self._run(argv, "check", self.command_timeout)

    def stanza_create(self) -> Completed:
        return self._run(stanza_create_cmd(self.base), "stanza-create", self.command_timeout)

    def expire(self) -> Completed:
        return self._run(expire_cmd(self.base), "expire", self.command_timeout)

    def verify(self, backup_set: str | None = None) -> VerifyResult:
        """Read every file of the repository back and check it; damage is in the result, not an exception."""
        res = self._run(verify_cmd(self.base, backup_set=backup_set), "verify", self.backup_timeout, log_output=False)
        try:
            return parse_verify(res.stdout, res.stderr)
        except ValueError as e:
            raise RepositoryError(f"cannot read pgbackrest verify output: {e}") from None

    def archive_listing(self) -> tuple[list[ArchivedSegment], list[HistoryFile]]:
        """Every WAL segment and every timeline history file in the stanza's archive (all archive ids)."""
        path = f"archive/{self.base.stanza}"
        res = self._run(repo_ls_cmd(self.base, path, io_timeout=self.probe_io_timeout), "repo-ls",
                        self.command_timeout, log_output=False)
        try:
            data = json.loads(res.stdout)
            return _segments(data), _history_files(data)
        except ValueError as e:
            raise RepositoryError(f"cannot list the WAL archive: {e}") from None

    def archive_get(self, wal: str, dest: str) -> bool:
        """Fetch one WAL segment; False when it is not in the archive (pgBackRest exits 1)."""
        res = self.runner.run(archive_get_cmd(self.base, wal, dest), timeout=self.command_timeout, log_output=False)
        if res.returncode == 1:
            return False
        if not res.ok:
            raise to_error(res.returncode, res.stdout, res.stderr, res.argv, "archive-get")
        return True

    def has_wal(self, archive_id: str, segment: str) -> bool:
        """Whether the archive holds ``segment`` (one directory listed, not the whole archive)."""
        path = f"archive/{self.base.stanza}/{archive_id}/{segment[:16]}"
        res = self._run(repo_ls_cmd(self.base, path, io_timeout=self.probe_io_timeout), "repo-ls",
                        self.command_timeout, log_output=False)
        try:
            return any(str(k).startswith(segment) for k in json.loads(res.stdout))
        except ValueError as e:
            raise RepositoryError(f"cannot list {path}: {e}") from None

    def manifest(self, label: str, parse: Callable[[str], T]) -> T:
        """One backup's manifest, read with repo-get (decrypted if need be), parsed by ``parse`` (a parser of
        pgbackrest_restore: ``tablespace_bytes``, ``manifest_sizes``)."""
        path = f"backup/{self.base.stanza}/{label}/backup.manifest"
        res = self._run([*self.base.argv(), "--log-level-console=warn", "repo-get", path], "repo-get",
                        self.command_timeout, log_output=False)
        try:
            return parse(res.stdout)
        except ValueError as e:
            raise RepositoryError(f"cannot read the manifest of {label}: {e}") from None

    def restore(self, options: RestoreOptions, on_line: Callable[[str, str], None] | None = None) -> Completed:
        return self._run(restore_cmd(self.base, options), "restore", self.backup_timeout, on_line, log_output=False)


# --------------------------------------------------------------------------- restore side (builders, parsers)
def restore_cmd(base: Base, o: RestoreOptions) -> list[str]:
    return restore_argv(base.argv(), o)


def repo_ls_cmd(base: Base, path: str, *, io_timeout: float | None = None) -> list[str]:
    argv = [*base.argv(), "--output=json", "--recurse", "--log-level-console=warn"]
    if io_timeout is not None:
        argv.append(f"--io-timeout={max(io_timeout, 0.1):g}")
    return [*argv, "repo-ls", path]


def archive_get_cmd(base: Base, wal: str, dest: str) -> list[str]:
    return [*base.argv(), "--log-level-console=warn", "archive-get", wal, dest]


def parse_repo_ls(text: str) -> list[ArchivedSegment]:
    """WAL segment files from ``repo-ls --recurse --output=json archive/<stanza>`` (skips .history, .backup,
    .partial and info files). Paths are ``<archive id>/<log>/<segment>-<sha1>[.ext]``."""
    return _segments(json.loads(text))


def _segments(data: dict[str, Any]) -> list[ArchivedSegment]:
    out = []
    for path, meta in data.items():
        if meta.get("type") != "file":
            continue
        name = path.rsplit("/", 1)[-1]
        seg = parse_segment(name) if len(name) > 24 and name[24] == "-" else None
        if seg is not None:
            archive_id = path.split("/", 1)[0] if "/" in path else ""
            out.append(ArchivedSegment(seg, int(meta.get("size") or 0), _ts(meta.get("time")), archive_id))
    return out


@dataclass(frozen=True)
class HistoryFile:
    archive_id: str
    timeline: int
    archived_at: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.timeline:08X}.history"


def _history_files(data: dict[str, Any]) -> list[HistoryFile]:
    """The ``<archive id>/0000000N.history`` files of the same listing."""
    out = []
    for path, meta in data.items():
        parts = path.split("/")
        if meta.get("type") == "file" and len(parts) == 2 and re.fullmatch(r"[0-9A-F]{8}\.history", parts[1]):
            out.append(HistoryFile(parts[0], int(parts[1][:8], 16), _ts(meta.get("time"))))
    return out
