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
    return options(path, stanza, [(key, command)], env)[key]


def options(path: Path, stanza: str, wanted: list[tuple[str, str]], env: Mapping[str, str] | None = None
            ) -> dict[str, str | None]:
    """Several options, each as the given command resolves it, the files read once."""
    environ = os.environ if env is None else env
    parser = _parser(path)
    out: dict[str, str | None] = {}
    for key, command in wanted:
        out[key] = environ.get("PGBACKREST_" + key.upper().replace("-", "_"))
        for section in (f"{stanza}:{command}", stanza, f"global:{command}", "global"):
            if out[key] is None and parser.has_option(section, key):
                out[key] = parser.get(section, key)
    return out


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
