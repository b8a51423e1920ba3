"""Runs the history could not take (disk full, a file deleted, replaced or read-only): kept in this process's
memory and, where the disk allows, in a journal beside the history (``history.pending.jsonl``, 0600), and
written into the history by the next run that can write it. Nothing a job did is lost to a broken store."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from opsd.adapters.files import give_to


@dataclass(frozen=True)
class Pending:
    job: str
    trigger: str
    host: str
    pid: int
    started_at: str  # ISO, with offset
    finished_at: str
    outcome: str
    error: str | None
    details: str  # the record as saved (JSON)
    kind: str
    version: int

    @property
    def key(self) -> tuple[str, int, str, str]:
        return self.host, self.pid, self.job, self.started_at


class Journal:
    _memory: ClassVar[dict[str, list[Pending]]] = {}

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner

    def keep(self, run: Pending) -> bool:
        """Remember ``run``; True when it also reached the journal file (it then survives this process)."""
        self._memory.setdefault(str(self.path), []).append(run)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(json.dumps(asdict(run)) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            return False
        give_to(self.path, self.owner)
        return True

    def waiting(self) -> list[Pending]:
        """Every kept run, from memory and from the journal (also one an earlier process left), once each."""
        runs = list(self._memory.get(str(self.path), []))
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                runs.append(Pending(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line cut by a full disk
        seen: dict[tuple[str, int, str, str], Pending] = {}
        for r in runs:
            seen.setdefault(r.key, r)
        return sorted(seen.values(), key=lambda r: r.started_at)

    def clear(self) -> None:
        self._memory.pop(str(self.path), None)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
