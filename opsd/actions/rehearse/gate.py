"""The operator's migration command, run against the copy and nothing else: as an OS user that is neither root
nor opsd's, in a network namespace of its own (no TCP at all, production's included), with an environment
that holds the copy's socket, port, database and role and nothing of production's. The copy lets that user in
as the migration role alone (trust on a socket directory only its group can enter); every other role only to
opsd itself (peer authentication mapped to root and opsd.run_as): the migration can never become the copy's
superuser, whose rights reach the host."""

from __future__ import annotations

import collections
import contextlib
import grp
import os
import pwd
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsd.adapters import files
from opsd.adapters.runner import current_user
from opsd.context import Context
from opsd.core.pgtext import mask_literals
from opsd.core.rehearse.statements import PREFIX
from opsd.errors import CommandTimeout, RefusedError, UsageError
from opsd.log import redact_text

# every statement with its duration, the bind parameters never (they are data)
LOG_OPTIONS = ("-c log_min_duration_statement=0", f"-c log_line_prefix={PREFIX}", "-c log_parameter_max_length=0",
               "-c log_parameter_max_length_on_error=0", "-c log_statement=none")
PATH = "/usr/local/bin:/usr/bin:/bin"
TAIL = 20


@dataclass(frozen=True)
class Gate:
    root: Path  # outside the (private) scratch area: os_user must be able to walk to its socket
    socket_dir: Path  # the migration's way in: run_as's, readable by os_user's group
    hba: Path
    ident: Path
    home: Path  # the command's HOME (npm and friends write there)
    os_user: str

    def server_options(self, private_socket: Path) -> tuple[str, ...]:
        return (f"-c hba_file={self.hba}", f"-c ident_file={self.ident}",
                f"-c unix_socket_directories={private_socket},{self.socket_dir}", *LOG_OPTIONS)


def check_os_user(ctx: Context, os_user: str | None) -> str:
    """The OS user the command runs as: configured, existing, neither root nor opsd.run_as (which owns
    production's data directory); and when opsd is not root, opsd's own user cannot switch to it."""
    run_as = ctx.settings.opsd.run_as
    if not os_user:
        raise RefusedError("rehearse.os_user is not set: the migration needs an OS user of its own",
                           hint="create one (useradd --system --no-create-home opsd-migrate) and set "
                                "[rehearse] os_user = \"opsd-migrate\"")
    try:
        pwd.getpwnam(os_user)
    except KeyError:
        raise RefusedError(f"rehearse.os_user {os_user!r} does not exist on this host") from None
    if os_user in ("root", run_as):
        raise RefusedError(f"rehearse.os_user is {os_user}: the migration would run with the rights of "
                           f"{'root' if os_user == 'root' else 'opsd.run_as, which owns production data'}",
                           hint="use an unprivileged user of its own, e.g. opsd-migrate")
    if os.geteuid() != 0 and current_user() != os_user:
        raise RefusedError(f"opsd runs as {current_user()}, not root: it cannot run the migration as {os_user}")
    return os_user


def open_gate(ctx: Context, work: Path, copy_id: str, os_user: str) -> Gate:
    """A new directory of root's in the system's temporary directory (0711: walked through, never listed)
    holding the socket directory (0750, group of ``os_user``) and the command's home; the hba (everyone local
    until the copy is quarantined) and ident files in the scratch area."""
    run_as = ctx.settings.opsd.run_as
    pw = pwd.getpwnam(os_user)
    root = Path(tempfile.mkdtemp(prefix=f"opsd-{copy_id}-"))
    os.chmod(root, 0o711)  # noqa: S103 - others may pass through to the socket directory, not list it
    sock, home = root / "socket", root / "home"
    sock.mkdir()
    os.chown(sock, pwd.getpwnam(run_as).pw_uid, pw.pw_gid)
    os.chmod(sock, 0o750)  # noqa: S103 - explicit: opsd's umask (077) would leave the group out
    home.mkdir(mode=0o700)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    gate = Gate(root, sock, work / f"{copy_id}.hba", work / f"{copy_id}.ident", home, os_user)
    files.write_private(gate.hba, "local all all trust\n", run_as)
    files.write_private(gate.ident, "", run_as)
    return gate


SAFE_NAME = re.compile(r"[A-Za-z0-9_.$@-]+")


def close_gate(ctx: Context, gate: Gate, role: str, superusers: set[str]) -> None:
    """Before the command runs: the migration role by trust (only ``os_user``'s group reaches the socket), any
    other role only for root, opsd.run_as and opsd's own user (peer). The caller reloads the copy."""
    run_as = ctx.settings.opsd.run_as
    odd = sorted(n for n in {role, *superusers} if not SAFE_NAME.fullmatch(n))
    if odd:
        raise RefusedError(f"role name {odd[0]!r} cannot be written into the copy's pg_hba.conf safely",
                           hint="rehearse as a role whose name is letters, digits and _ . $ @ - only (--role)")
    os_users = sorted({"root", run_as, current_user()})
    files.write_private(gate.hba, f"# opsd rehearse: the migration as {role}; everything else opsd's alone\n"
                                  f"local all \"{role}\" trust\nlocal all all peer map=opsd\n", run_as)
    files.write_private(gate.ident, "".join(f"opsd {u} \"{r}\"\n" for u in os_users for r in sorted(superusers)),
                        run_as)


def remove_gate(gate: Gate, *, kept: bool = False) -> None:
    """The socket directory and the command's home; the hba and ident files too unless the copy is kept (its
    server reads them again at a reload)."""
    for p in () if kept else (gate.hba, gate.ident):
        with contextlib.suppress(OSError):
            p.unlink()
    shutil.rmtree(gate.root, ignore_errors=True)


def check_env(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--env NAME=VALUE``: never one of libpq's (it would point the command elsewhere)."""
    out = {}
    for p in pairs:
        name, eq, value = p.partition("=")
        if not eq or not name.replace("_", "a").isalnum():
            raise UsageError(f"--env {p!r}: give NAME=VALUE")
        if name.startswith("PG"):
            raise UsageError(f"--env {name}: libpq's settings are opsd's to set (they point at the copy)")
        out[name] = value
    return out


def argv(ctx: Context, gate: Gate, cmd: str, workdir: Path, env: dict[str, str]) -> list[str]:
    """``cmd`` in a clean environment and ``workdir``; as root: in a new network namespace, then as os_user."""
    pw = pwd.getpwnam(gate.os_user)
    envs = [f"{k}={v}" for k, v in {"PATH": PATH, "HOME": str(gate.home), "LANG": "C.UTF-8",
                                     "npm_config_update_notifier": "false", **env}.items()]
    body = ["env", "-i", f"--chdir={workdir}", *envs, "sh", "-c", cmd]
    if os.geteuid() != 0:
        return body
    groups = ",".join(str(g.gr_gid) for g in grp.getgrall() if gate.os_user in g.gr_mem) or str(pw.pw_gid)
    drop = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", f"--groups={groups}", "--inh-caps=-all",
            "--no-new-privs", "--"]
    if not ctx.settings.rehearse.isolate_network:
        return drop + body
    hide = hidden_dirs(ctx, [gate.socket_dir, gate.home, workdir])
    mounts = " && ".join(f"mount -t tmpfs -o size=4k,mode=0755 opsd-hidden {shlex.quote(str(d))}" for d in hide)
    return ["unshare", "--net", "--mount", "--", "sh", "-c", f'{mounts + " && " if mounts else ""}exec "$@"', "sh",
            *drop, *body]


def hidden_dirs(ctx: Context, keep: list[Path]) -> list[Path]:
    """Production's socket directories, hidden under an empty tmpfs in the command's own mount namespace (none
    that holds what the command needs: its socket, home or working directory)."""
    host = ctx.settings.postgres.host
    dirs = {Path(p) for p in ("/run/postgresql", "/var/run/postgresql")}
    if host.startswith("/"):
        dirs.add(Path(host))
    real = {Path(os.path.realpath(d)) for d in dirs if d.is_dir()}
    kept = [Path(os.path.realpath(k)) for k in keep]
    return sorted(d for d in real if not any(k == d or d in k.parents for k in kept))


@dataclass(frozen=True)
class Ran:
    exit_code: int | None  # None: killed at the timeout
    seconds: float
    tail: list[str]


def run(ctx: Context, argv_: list[str], timeout: float, report: Callable[[str], None]) -> Ran:
    """The command, its output kept (literals masked, secrets redacted: the last lines), never logged raw."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL)

    def line(_stream: str, text: str) -> None:
        shown = redact_text(mask_literals(text))[:300]
        tail.append(shown)

    t0 = time.monotonic()
    try:
        res = ctx.runner.run(argv_, timeout=timeout, as_user=False, on_line=line, log_output=False)
    except CommandTimeout:
        report(f"killed after {timeout:.0f} s (rehearse.timeout / --timeout)")
        return Ran(None, round(time.monotonic() - t0, 3), list(tail))
    return Ran(res.returncode, round(res.duration, 3), list(tail))


def shown_command(cmd: str) -> str:
    """The operator's command as opsd records and prints it: secrets redacted."""
    return redact_text(cmd)
