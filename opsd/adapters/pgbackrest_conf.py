"""Read a few options from the DBA's pgbackrest.conf (never written by opsd), the way pgBackRest resolves them:
an environment variable ``PGBACKREST_<KEY>`` first, then ``[<stanza>:<command>]``, ``[<stanza>]``,
``[global:<command>]``, ``[global]``, in the main file and in the ``*.conf`` files of ``config-include-path``.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_INCLUDE_PATH = Path("/etc/pgbackrest/conf.d")
_TRUE = ("y", "yes", "true", "1")


def _parser(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(path)
        include = Path(parser.get("global", "config-include-path", fallback=str(DEFAULT_INCLUDE_PATH)))
        parser.read(sorted(str(p) for p in include.glob("*.conf")))
    except (OSError, configparser.Error):
        pass
    return parser


def option(path: Path, stanza: str, key: str, command: str = "restore",
           env: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if env is None else env
    from_env = environ.get("PGBACKREST_" + key.upper().replace("-", "_"))
    if from_env is not None:
        return from_env
    parser = _parser(path)
    for section in (f"{stanza}:{command}", stanza, f"global:{command}", "global"):
        if parser.has_option(section, key):
            return parser.get(section, key)
    return None


def archive_async(path: Path, stanza: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``archive-get`` (the restore_command of a restored copy) runs asynchronously, through a spool."""
    return (option(path, stanza, "archive-async", "archive-get", env) or "n").strip().lower() in _TRUE


def pg_hosts(path: Path, stanza: str) -> list[int]:
    """The pgN indexes the stanza's section (or [global]) configures a data directory for: with
    ``backup-standby``, pgBackRest finds the primary among them and copies from a standby."""
    parser = _parser(path)
    found = set()
    for section in (stanza, "global"):
        if parser.has_section(section):
            for key in parser.options(section):
                head, _, tail = key.partition("-")
                if tail == "path" and head.startswith("pg") and head[2:].isdigit():
                    found.add(int(head[2:]))
    return sorted(found)
