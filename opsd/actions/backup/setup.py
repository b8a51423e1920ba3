"""``opsd setup``: make archiving to pgBackRest work, idempotently.

Verifies/sets ``archive_mode``, ``archive_command`` and ``wal_level`` (ALTER SYSTEM + reload), says when a
restart is needed (and restarts only when asked), then runs ``stanza-create`` and ``check``.
An ``archive_command`` that is not pgBackRest for this stanza is never replaced unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsd.actions.backup import heartbeat
from opsd.actions.server import server_role
from opsd.adapters.pgbackrest import archive_push_command
from opsd.adapters.postgres import PgCtl
from opsd.context import Context
from opsd.db.connection import alter_system, reload_conf
from opsd.db.queries import PresentRow, SettingRow, fetch_all, fetch_one
from opsd.errors import OpsdError

NAMES = ["archive_command", "archive_mode", "wal_level"]


@dataclass(frozen=True)
class Step:
    name: str
    status: str  # ok | changed | skipped | pending
    message: str


@dataclass
class SetupResult:
    steps: list[Step] = field(default_factory=list)
    restart_needed: bool = False

    @property
    def complete(self) -> bool:
        return not self.restart_needed


def desired_settings(current: dict[str, str], expected_cmd: str, stanza: str,
                     replace_archive_command: bool, pending: frozenset[str] = frozenset()) -> dict[str, str]:
    """Pure: which settings must change. Raises OpsdError for a foreign archive_command.
    Settings already changed and only waiting for a restart (``pending``) are left alone."""
    changes = {}
    if current["archive_mode"] not in ("on", "always") and "archive_mode" not in pending:
        changes["archive_mode"] = "on"
    if current["wal_level"] == "minimal" and "wal_level" not in pending:
        changes["wal_level"] = "replica"
    cmd = current["archive_command"].strip()
    ours = "archive-push" in cmd and f"--stanza={stanza}" in cmd and "pgbackrest" in cmd
    config = next((w for w in expected_cmd.split() if w.startswith("--config=")), "")
    if ours and config not in cmd.split():
        # pgBackRest for this stanza, but through another pgbackrest.conf (a restored copy made the new primary
        # still names the old primary's): archive-push would refuse its data directory
        changes["archive_command"] = expected_cmd
    elif not ours:
        if cmd and cmd not in ("(disabled)",) and not replace_archive_command:
            raise OpsdError(
                f"archive_command is already set to {cmd!r}, which does not push to pgBackRest stanza {stanza!r}",
                hint="change it yourself, or rerun with --replace-archive-command to set "
                     f"{expected_cmd!r}",
            )
        changes["archive_command"] = expected_cmd
    return changes


def patroni_owned(changes: dict[str, str], patroni_url: str) -> OpsdError | None:
    """Under Patroni, archiving settings belong in Patroni's configuration: ALTER SYSTEM would be overridden at
    its next restart or fight it (postgresql.auto.conf wins over the postgresql.conf Patroni writes). Say what to
    put there instead of changing anything."""
    if not changes or not patroni_url:
        return None
    yaml = "; ".join(f"{k}: {v!r}" for k, v in changes.items())
    return OpsdError(f"this node is managed by Patroni ([patroni] url): set {yaml} in Patroni's configuration "
                     "(archive_mode and wal_level under bootstrap.dcs.postgresql.parameters or 'patronictl "
                     "edit-config', archive_command under postgresql.parameters of each node), then run opsd setup "
                     "again; opsd does not ALTER SYSTEM behind Patroni's back",
                     hint="docs/install.md, 'HA pairs (Patroni)'")


def _read(ctx: Context) -> dict[str, SettingRow]:
    with ctx.connect() as conn:
        return {r.name: r for r in fetch_all(conn, "settings", SettingRow, {"names": NAMES})}


def _heartbeat_table(ctx: Context) -> Step:
    with ctx.connect() as conn:
        present = fetch_one(conn, "heartbeat_exists", PresentRow).present
    heartbeat.ensure_table(ctx)
    if present:
        return Step("heartbeat", "ok", "opsd.heartbeat exists (drill marker rows)")
    return Step("heartbeat", "changed", "created schema opsd and table opsd.heartbeat (drill marker rows)")


def setup(ctx: Context, *, restart: bool = False, replace_archive_command: bool = False) -> SetupResult:
    out = SetupResult()
    role = server_role(ctx)
    if role.in_recovery:
        out.steps.append(Step("role", "skipped", "standby: run opsd setup on the primary"))
        return out
    stanza = ctx.settings.pgbackrest.stanza
    expected = archive_push_command(ctx.pgbackrest.base)
    rows = _read(ctx)
    changes = desired_settings({n: r.configured for n, r in rows.items()}, expected, stanza, replace_archive_command,
                               frozenset(n for n, r in rows.items() if r.pending_restart))
    refused = patroni_owned(changes, ctx.settings.patroni.url)
    if refused is not None:
        raise refused
    if changes:
        with ctx.connect() as conn:
            for name, value in changes.items():
                alter_system(conn, name, value)
            reload_conf(conn)
        for name, value in changes.items():
            out.steps.append(Step(f"set {name}", "changed", f"{rows[name].configured!r} -> {value!r}"))
        rows = _read(ctx)
    else:
        out.steps.append(Step("settings", "ok", "archive_mode, archive_command and wal_level already right"))
    out.steps.append(_heartbeat_table(ctx))
    pending = [n for n, r in rows.items() if r.pending_restart]
    if pending and restart:
        PgCtl(ctx.settings.postgres, ctx.layout, ctx.runner, ctx.settings.opsd.state_dir / "pg_ctl.log").restart()
        out.steps.append(Step("restart", "changed", f"PostgreSQL restarted to apply {', '.join(pending)}"))
        pending = [n for n, r in _read(ctx).items() if r.pending_restart]
    res = ctx.pgbackrest.stanza_create()
    created = "already exists" not in (res.stdout + res.stderr)
    out.steps.append(Step("stanza-create", "changed" if created else "ok",
                          f"stanza {stanza} {'created' if created else 'already exists and matches'}"))
    if pending:
        out.restart_needed = True
        out.steps.append(Step("restart", "pending",
                              f"restart PostgreSQL to apply {', '.join(pending)}, then run 'opsd setup' again "
                              "(or 'opsd setup --restart')"))
        return out
    ctx.pgbackrest.check()
    out.steps.append(Step("check", "ok", "pgbackrest check passed: WAL reaches the repository"))
    return out
