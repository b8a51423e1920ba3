"""Filesystem side effects: the state directory, file ownership, and the cross-process lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opsd.errors import BusyError, OpsdError


def give_to(path: Path, user: str) -> None:
    """When opsd runs as root, hand files it creates to ``user`` so the daemon (running as that user) can use them."""
    if os.geteuid() != 0 or user == "root":
        return
    pw = pwd.getpwnam(user)
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, pw.pw_uid, pw.pw_gid)


def ensure_dir(path: Path, user: str, mode: int = 0o750) -> Path:
    try:
        if not path.is_dir():
            path.mkdir(parents=True, mode=mode, exist_ok=True)  # another process may create it at the same time
            os.chmod(path, mode)  # mkdir's mode passes through the umask
            give_to(path, user)
    except OSError as e:
        raise OpsdError(f"cannot create directory {path}: {e.strerror}",
                        hint="check opsd.state_dir and that opsd runs as root or as opsd.run_as") from None
    return path


@contextlib.contextmanager
def exclusive_lock(lock_dir: Path, name: str, user: str, what: str) -> Iterator[None]:
    """A cross-process, non-blocking lock (flock). If held, raise BusyError naming the holder.

    The holder's pid, command and start time are written into the lock file; the kernel drops the lock
    when the holder dies, so a crashed run never leaves a stale lock behind.
    """
    ensure_dir(lock_dir, user)
    path = lock_dir / f"{name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
    except OSError as e:
        raise OpsdError(f"cannot open lock file {path}: {e.strerror}") from None
    give_to(path, user)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise BusyError(f"{what} already running ({holder}); lock {path}",
                            hint="wait for it to finish; opsd never runs two at once") from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {data.get('pid')} on {data.get('host')}: {data.get('what')}, since {data.get('since')}"
    except (OSError, ValueError):
        return "holder unknown"


def nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _statvfs(path: Path) -> os.statvfs_result | None:
    try:
        return os.statvfs(nearest_existing(path))
    except OSError:
        return None


def free_bytes(path: Path) -> int | None:
    st = _statvfs(path)
    return None if st is None else st.f_bavail * st.f_frsize


def is_empty_dir(path: Path) -> bool:
    try:
        return not any(path.iterdir())
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        return False


@dataclass(frozen=True)
class PathFacts:
    """What a restore destination is on disk (symlinks resolved)."""

    exists: bool
    real: Path
    is_dir: bool
    empty: bool
    mount_point: bool
    free_bytes: int | None


def path_facts(path: Path) -> PathFacts:
    real = Path(os.path.realpath(path))
    is_dir = real.is_dir()
    return PathFacts(path.exists(), real, is_dir, is_empty_dir(real), is_dir and os.path.ismount(real),
                     free_bytes(real))


def real_path(path: Path) -> Path:
    return Path(os.path.realpath(path))


def private_dir_problem(path: Path, user: str) -> str | None:
    """Why ``path`` (a scratch directory, existing or to be created) could be turned against opsd by another
    local user: it is a symbolic link, owned by someone else, writable by others, or below a directory that
    others could replace it in (writable by them without the sticky bit). None: it is safe."""
    import stat

    trusted = {0, pwd.getpwnam(user).pw_uid}
    if path.is_symlink():
        return f"{path} is a symbolic link"
    real = Path(os.path.realpath(path))
    for d in (real, *real.parents):
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            continue  # created later by opsd, with its own mode
        loose = st.st_mode & 0o022
        if st.st_uid not in trusted:
            return f"{d} belongs to uid {st.st_uid}, not to {user} or root"
        if d == real and loose:
            return f"{d} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
        if d != real and loose and not st.st_mode & stat.S_ISVTX:
            return f"{d} is writable by other users without the sticky bit: they could replace {real}"
    return None


def write_private(path: Path, text: str, user: str) -> None:
    """Write ``text`` to a new file ``path`` (0600, owned by ``user``): whatever was there, a symbolic link
    included, is unlinked first, never followed (O_EXCL | O_NOFOLLOW)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise OpsdError(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(text)
    give_to(path, user)


def write_whole(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` all at once: written to a new file beside it (never through a symbolic
    link), flushed, then renamed over it. A failure leaves the old file, or none, never half of the new one. The
    directory must exist: opsd does not create directories for a path it was given."""
    if not path.name or path.is_dir():
        raise OpsdError(f"cannot write {path}: it is a directory (give a file name)")
    if not path.parent.is_dir():
        raise OpsdError(f"cannot write {path}: directory {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = text.encode("utf-8", "replace")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except OSError as e:
        raise OpsdError(f"cannot write {path}: {e.strerror}") from None


def fresh_private_dir(path: Path, user: str, *, empty: bool = False) -> Path:
    """``path`` as a directory of ``user``'s alone (0700): a symbolic link there is removed (not followed), a
    directory that others could write (or any, with ``empty``) is emptied and made private; one owned by another
    user is refused."""
    import shutil
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        path.unlink()
    elif st is not None and st.st_uid not in {0, pwd.getpwnam(user).pw_uid}:
        raise OpsdError(f"refusing to use {path}: it belongs to uid {st.st_uid}, not {user}")
    elif st is not None and (empty or stat.S_IMODE(st.st_mode) & 0o077):
        shutil.rmtree(path)
    ensure_dir(path, user, mode=0o700)
    os.chmod(path, 0o700)
    return path


def scratch_instances(root: Path, prefix: str = "drill-") -> list[Path]:
    """The scratch instance directories under ``root`` (none if it does not exist). A symbolic link is never
    one (a planted ``drill-x -> /var/lib/postgresql/15/main`` must not get a signal or a removal)."""
    if not root.is_dir() or root.is_symlink():
        return []
    return sorted(d for d in root.glob(f"{prefix}*") if not d.is_symlink() and d.is_dir())


def ensure_side_config(dest: Path, user: str) -> None:
    """A side copy of a cluster whose config lives outside PGDATA (Debian) has no postgresql.conf: give the copy
    (never a production directory) a minimal one so it can start. Its settings are in postgresql.auto.conf.
    The files belong to ``user`` (the server reads them; opsd may run as root with umask 077)."""
    for name, text in (("postgresql.conf", "# written by opsd restore: the backup had no postgresql.conf "
                                           "(config outside PGDATA)\n"),
                       ("pg_hba.conf", "local all all peer\n"), ("pg_ident.conf", "")):
        path = dest / name
        if not path.exists() and not path.is_symlink():
            write_private(path, text, user)


def make_empty_dir(path: Path, user: str) -> None:
    """Create ``path`` (mode 700, owned by ``user``) for a restore; it must be absent or empty."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)
    except OSError as e:
        raise OpsdError(f"cannot create {path}: {e.strerror}") from None
    give_to(path, user)


def rename_aside(path: Path, suffix: str) -> Path:
    """Rename ``path`` to ``<path>.<suffix>`` on its own filesystem (never deleted, never over something)."""
    aside = path.with_name(f"{path.name}.{suffix}")
    if aside.exists() or aside.is_symlink():
        raise OpsdError(f"{aside} already exists; not moving {path} over it")
    try:
        path.rename(aside)
    except OSError as e:
        raise OpsdError(f"cannot move {path} aside to {aside}: {e.strerror}") from None
    return aside


def move_aside(path: Path, suffix: str, user: str) -> Path:
    """Rename a data directory to ``<path>.<suffix>`` (never deleted) and recreate it empty."""
    st = path.stat()
    aside = rename_aside(path, suffix)
    try:
        path.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(path, st.st_uid, st.st_gid)
    except OSError as e:
        raise OpsdError(f"moved {path} aside to {aside} but cannot recreate it empty: {e.strerror}") from None
    give_to(path, user)
    return aside


def remove_scratch(path: Path, scratch_root: Path, prefix: str = "drill-") -> None:
    """Delete a scratch instance directory, and refuse anything that is not ``<scratch_root>/<prefix>*``:
    a drill's teardown must never be able to remove anything else."""
    import shutil

    root = scratch_root.resolve()
    real = path.resolve()
    if path.is_symlink() or real.parent != root or not real.name.startswith(prefix) or real == root:
        raise OpsdError(f"refusing to remove {path}: not a scratch instance under {scratch_root}")
    if not real.is_dir():
        return
    try:
        shutil.rmtree(real)
    except OSError as e:
        raise OpsdError(f"cannot remove scratch instance {path}: {e.strerror}") from None


@contextlib.contextmanager
def scratch_dir(parent: Path, user: str) -> Iterator[Path]:
    """A private temporary directory owned by ``user``, removed afterwards."""
    import shutil
    import tempfile

    ensure_dir(parent, user)
    path = Path(tempfile.mkdtemp(prefix="opsd-", dir=parent))
    give_to(path, user)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def device(path: Path) -> int | None:
    """The filesystem (st_dev) ``path`` really lives on (symlinks followed; an absent path: its nearest
    existing parent's)."""
    try:
        return os.stat(nearest_existing(path)).st_dev
    except OSError:
        return None


def total_bytes(path: Path) -> int | None:
    """The size of the filesystem ``path`` lives on."""
    st = _statvfs(path)
    return None if st is None else st.f_blocks * st.f_frsize


def tablespace_dirs(data_dir: Path) -> list[Path]:
    """Where a cluster's tablespaces really are (the targets of ``pg_tblspc/*``)."""
    try:
        links = list((data_dir / "pg_tblspc").iterdir())
    except OSError:
        return []
    return [Path(os.path.realpath(p)) for p in links]
