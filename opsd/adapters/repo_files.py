"""opsd's own small files in a pgBackRest repository (fleet drill results): JSON under ``<repo1-path>/opsd/``,
beside pgBackRest's ``archive/`` and ``backup/`` and never inside them. The repository is the one a pgbackrest.conf
describes for a stanza (repo1 only), read the way pgBackRest resolves its options.

- ``repo1-type=s3``: boto3, with the repository's endpoint, region, keys, CA file, TLS verification and URI style
  (:func:`opsd.adapters.s3.repo_client`); the keys are never logged nor returned.
- ``posix`` (pgBackRest's default; ``cifs`` too, a mounted share): files under ``repo1-path``, written atomically
  (a temporary file beside it, then renamed), mode 0640, owned like ``repo1-path`` when opsd runs as root.
- ``azure``, ``gcs``, ``sftp``: refused with one line (not supported yet).

An encrypted repository (``repo1-cipher-type`` set): these files are written and read **unencrypted**. They hold
no secret and no data of the cluster, only verdicts, names and timings (what ``opsd drill list`` prints), and
pgBackRest never reads them; the repository's own files stay encrypted as they were.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from opsd.adapters.files import write_whole
from opsd.adapters.pgbackrest_conf import options
from opsd.core.urls import scrub_urls
from opsd.errors import OpsdError

ROOT = "opsd"
FILE_MODE = 0o640
DIR_MODE = 0o750
POSIX_TYPES = ("posix", "cifs")
_OPTIONS = ("repo1-type", "repo1-path", "repo1-s3-bucket")


def checked(relpath: str, *, prefix: bool = False) -> str:
    """``relpath`` if it names a file under ``opsd/`` (``prefix``: a folder, ``opsd/`` itself allowed), else a
    refusal: never a path into pgBackRest's own files, never ``..``, ``.``, an empty part or an absolute path."""
    parts = (relpath[:-1] if prefix and relpath.endswith("/") else relpath).split("/")
    if (parts[0] != ROOT or (len(parts) < 2 and not prefix) or "\\" in relpath
            or any(p in ("", ".", "..") for p in parts)):
        raise OpsdError(f"refusing repository path {relpath!r}: opsd writes only under {ROOT}/ (no '..', no "
                        "empty part), never into pgBackRest's archive/ or backup/")
    return "/".join(parts)


class _Repo:
    """repo1 of ``conf`` for ``stanza``: its type, path and bucket."""

    def __init__(self, conf: Path, stanza: str) -> None:
        got = options(conf, stanza, [(k, "backup") for k in _OPTIONS])
        self.conf, self.stanza = conf, stanza
        self.type = (got["repo1-type"] or "posix").strip().lower()
        self.path = (got["repo1-path"] or "/var/lib/pgbackrest").strip()
        self.bucket = (got["repo1-s3-bucket"] or "").strip()
        if self.type not in (*POSIX_TYPES, "s3"):
            raise OpsdError(f"repository type {self.type!r} ({conf}, stanza {stanza}) is not supported for opsd's "
                            "files in the repository (s3 and posix are)")
        if self.type == "s3" and not self.bucket:
            raise OpsdError(f"repo1-s3-bucket is not set in {conf} for stanza {stanza}")

    def key(self, relpath: str) -> str:
        """The S3 key of ``relpath`` (pgBackRest's keys: repo1-path without its leading slash)."""
        return "/".join(p for p in (self.path.strip("/"), relpath) if p)

    def file(self, relpath: str) -> Path:
        return Path(self.path) / relpath

    def where(self, relpath: str) -> str:
        return f"s3://{self.bucket}/{self.key(relpath)}" if self.type == "s3" else str(self.file(relpath))

    def client(self) -> Any:
        from opsd.adapters.s3 import repo_client  # boto3: imported only for an S3 repository

        return repo_client(self.conf, self.stanza)


def write(conf: Path, stanza: str, relpath: str, data: bytes) -> str:
    """Write ``data`` as ``relpath`` (under ``opsd/``) of the repository; where it went (no secret in it)."""
    relpath = checked(relpath)
    repo = _Repo(conf, stanza)
    if repo.type == "s3":
        with _s3_errors("writing", repo.where(relpath)):
            repo.client().put_object(Bucket=repo.bucket, Key=repo.key(relpath), Body=data,
                                     ContentType="application/json")
        return repo.where(relpath)
    _write_posix(repo, relpath, data)
    return repo.where(relpath)


def listing(conf: Path, stanza: str, prefix: str) -> list[str]:
    """Every file under ``prefix`` (under ``opsd/``), at any depth, as relative paths :func:`read` takes;
    sorted. A prefix with nothing under it: an empty list."""
    prefix = checked(prefix, prefix=True)
    repo = _Repo(conf, stanza)
    if repo.type == "s3":
        return _list_s3(repo, prefix)
    top = repo.file(prefix)
    try:
        found = [p for p in top.rglob("*") if p.is_file() and not p.name.startswith(".")] if top.is_dir() else []
    except OSError as e:
        raise OpsdError(f"cannot list {top}: {e.strerror}") from None
    return sorted(f"{prefix}/{p.relative_to(top).as_posix()}" for p in found)


def read(conf: Path, stanza: str, relpath: str) -> bytes:
    """The content of ``relpath`` (under ``opsd/``) of the repository."""
    relpath = checked(relpath)
    repo = _Repo(conf, stanza)
    if repo.type == "s3":
        with _s3_errors("reading", repo.where(relpath)):
            body: bytes = repo.client().get_object(Bucket=repo.bucket, Key=repo.key(relpath))["Body"].read()
        return body
    try:
        return repo.file(relpath).read_bytes()
    except OSError as e:
        raise OpsdError(f"cannot read {repo.file(relpath)}: {e.strerror}") from None


def _list_s3(repo: _Repo, prefix: str) -> list[str]:
    base = repo.key("")
    base = f"{base}/" if base else ""
    out: list[str] = []
    with _s3_errors("listing", repo.where(prefix)):
        pages = repo.client().get_paginator("list_objects_v2").paginate(Bucket=repo.bucket,
                                                                          Prefix=f"{base}{prefix}/")
        for page in pages:
            out += [str(o["Key"])[len(base):] for o in page.get("Contents", [])]
    return sorted(out)


@contextlib.contextmanager
def _s3_errors(doing: str, where: str) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as e:
        raise OpsdError(f"{doing} {where} failed: {scrub_urls(str(e))}",
                        hint="check the repository's endpoint, bucket and credentials in pgbackrest.conf") from None


def _write_posix(repo: _Repo, relpath: str, data: bytes) -> None:
    """Directories made as needed (0750), the file replaced atomically (0640); as root, everything handed to the
    owner of repo1-path (pgBackRest's user), so the cluster's opsd, running as that user, reads it."""
    top = Path(repo.path)
    target = repo.file(relpath)
    try:
        owner = top.stat()
    except OSError as e:
        raise OpsdError(f"repository path {top} is not usable: {e.strerror}",
                        hint="check repo1-path in pgbackrest.conf (the repository must be mounted here)") from None
    made = top
    for part in Path(relpath).parent.parts:
        made = made / part
        try:
            made.mkdir(mode=DIR_MODE, exist_ok=True)
        except OSError as e:
            raise OpsdError(f"cannot create directory {made}: {e.strerror}") from None
        _own(made, owner)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OpsdError(f"refusing to write {target}: not UTF-8 text") from None
    write_whole(target, text, FILE_MODE)
    _own(target, owner)


def _own(path: Path, owner: os.stat_result) -> None:
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
