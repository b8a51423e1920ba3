"""Values in the commands PostgreSQL runs through ``/bin/sh`` (archive_command, restore_command) (pure).

PostgreSQL first replaces its own escapes (``%p``, ``%f``, ``%r``; ``%%`` is a literal ``%``), then hands the
string to ``/bin/sh -c``. A value opsd puts into such a command is therefore either a plain word (letters of any
script, digits and ``_ . / - + , : @ =``: nothing a shell or PostgreSQL reads as special), quoted for the shell
with its ``%`` doubled, or refused with one line. Newlines and control characters are always refused: neither
ALTER SYSTEM nor a configuration file can hold them.
"""

from __future__ import annotations

import shlex

from opsd.errors import UnsafeShellValue

_PLAIN_PUNCT = frozenset("_./-+,:@=")


def is_plain(value: str) -> bool:
    return bool(value) and all(c.isalnum() or c in _PLAIN_PUNCT for c in value)


def _refuse_control(what: str, value: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UnsafeShellValue(f"{what} cannot hold a newline or a control character: {value!r}")


def sh_word(what: str, value: str) -> str:
    """``value`` as one shell word in a command PostgreSQL runs: as is when plain, else single-quoted, its ``%``
    doubled (PostgreSQL turns ``%%`` back into ``%`` before the shell sees it)."""
    _refuse_control(what, value)
    return value if is_plain(value) else shlex.quote(value).replace("%", "%%")


def plain_word(what: str, value: str) -> str:
    """``value`` when it is plain, else a one-line UnsafeShellValue: for a command that a program writes into a
    configuration file without escaping it (pgBackRest's recovery options), where no quoting survives."""
    _refuse_control(what, value)
    if not is_plain(value):
        bad = "".join(sorted({c for c in value if not (c.isalnum() or c in _PLAIN_PUNCT)}))
        raise UnsafeShellValue(f"{what} cannot hold {bad!r}, only letters, digits and _ . / - + , : @ =: "
                               f"{value!r}")
    return value
