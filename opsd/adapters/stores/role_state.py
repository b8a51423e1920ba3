"""Since when this node's role has been undecided: ``role.undecided.json`` in the state directory, written whole
(a crash leaves the old file or none). Absent: the role was decided at the last look."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path

from opsd.adapters.files import ensure_dir, write_whole

NAME = "role.undecided.json"


def undecided_since(state_dir: Path) -> tuple[datetime, str] | None:
    try:
        data = json.loads((state_dir / NAME).read_text())
        return datetime.fromisoformat(data["since"]), str(data.get("why", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_undecided(state_dir: Path, owner: str, since: datetime, why: str) -> None:
    ensure_dir(state_dir, owner)
    write_whole(state_dir / NAME, json.dumps({"since": since.isoformat(), "why": why}), 0o644)


def mark_decided(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / NAME).unlink()
