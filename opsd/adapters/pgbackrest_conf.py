"""Read a few options from the DBA's pgbackrest.conf (never written by opsd)."""

from __future__ import annotations

import configparser
from pathlib import Path


def option(path: Path, stanza: str, key: str) -> str | None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(path)
    except (OSError, configparser.Error):
        return None
    for section in (stanza, "global:restore", "global"):
        if parser.has_option(section, key):
            return parser.get(section, key)
    return None


def archive_async(path: Path, stanza: str) -> bool:
    return (option(path, stanza, "archive-async") or "n").strip().lower() in ("y", "yes", "true", "1")
