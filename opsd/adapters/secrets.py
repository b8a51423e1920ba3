"""Secrets from where systemd and operators keep them, never from opsd.toml's plain text: a systemd credential
(``LoadCredential=NAME:/path`` in the unit, read from ``$CREDENTIALS_DIRECTORY/NAME``: only the service can read
it, unlike ``Environment=`` which ``systemctl show`` prints to any local user), a ``*_file`` key naming a file
(0600), or an environment variable. The first that is set wins, in that order."""

from __future__ import annotations

import os
from pathlib import Path

from opsd.errors import OpsdError
from opsd.log import register_secret

# credential names (the NAME in LoadCredential=NAME:/etc/opsd/secret-file)
WEBHOOK_URL = "webhook-url"
WEBHOOK_HEADERS = "webhook-headers"
PGBOUNCER_PASSWORD = "pgbouncer-password"  # noqa: S105 (a credential name)
REPORT_S3_KEY = "report-s3-key"
REPORT_S3_KEY_SECRET = "report-s3-key-secret"  # noqa: S105 (a credential name)


def credential(name: str) -> str | None:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    if not path.exists():
        return None
    return _read(path, f"systemd credential {name}")


def _read(path: Path, what: str) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError as e:
        raise OpsdError(f"cannot read {what} ({path}): {e.strerror}",
                        hint="it must be readable by opsd.run_as, and no one else") from None


def _refuse_shared(path: Path, what: str) -> None:
    """A secret file any local user can read is refused (not read), so the mistake is fixed, not lived with."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # _read says why
    if mode & 0o004:
        raise OpsdError(f"{what} ({path}) is readable by every local user: refused",
                        hint=f"chmod 600 {path} (owner: opsd.run_as), or use a systemd credential")


def secret(name: str, *, file: Path | None = None, key: str = "", env: str = "", private: bool = False
           ) -> str | None:
    """The secret ``name``: its systemd credential, else ``file`` (the config key ``key`` named it; ``private``:
    refused when world-readable), else the environment variable ``env``; None when none is set."""
    found = credential(name)
    if found is None and file is not None:
        if private:
            _refuse_shared(file, key or str(file))
        found = _read(file, key or str(file))
    if found is None and env:
        found = os.environ.get(env) or None
    register_secret(found)  # from now on masked in every log line of this process
    return found
