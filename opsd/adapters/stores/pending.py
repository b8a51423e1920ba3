"""Runs the history could not take (disk full, a file deleted, replaced or read-only): kept in this process's
memory and, where the disk allows, in a journal beside the history (``history.pending.jsonl``, 0600), and
written into the history by the next run that can write it. Nothing a job did is lost to a broken store."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from pydantic import TypeAdapter

from opsd.adapters.files import give_to, write_whole
from opsd.core.records.runs import Outcome


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


_PENDING = TypeAdapter(Pending)


def parse(line: bytes) -> Pending | None:
    """A journal line as a run, or None when it is not one opsd wrote whole (cut by a full disk, damaged, or of
    another shape): every field of its type, real times, a known outcome, details that are JSON."""
    try:
        run = _PENDING.validate_json(line, strict=True)
        datetime.fromisoformat(run.started_at)
        datetime.fromisoformat(run.finished_at)
        Outcome(run.outcome)
        json.loads(run.details)
    except ValueError:  # pydantic's ValidationError and UnicodeDecodeError are ValueErrors
        return None
    return run if 0 <= run.pid < 2**31 and 0 <= run.version < 2**31 else None


class Journal:
    _memory: ClassVar[dict[str, list[Pending]]] = {}

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner
        self.rejected: list[bytes] = []  # lines of the journal file that are not runs (see :meth:`set_aside`)

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name.removesuffix(".jsonl") + ".rejected")

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
            lines = self.path.read_bytes().split(b"\n")
        except OSError:
            lines = []
        self.rejected = []
        for line in lines:
            run = parse(line) if line.strip() else None
            if run is not None:
                runs.append(run)
            elif line.strip():
                self.rejected.append(line)
        seen: dict[tuple[str, int, str, str], Pending] = {}
        for r in runs:
            seen.setdefault(r.key, r)
        return sorted(seen.values(), key=lambda r: r.started_at)

    def present(self) -> bool:
        return bool(self._memory.get(str(self.path))) or self.path.exists()

    def set_aside(self) -> int:
        """Move the journal's lines that are not runs (see :meth:`waiting`) to ``history.pending.rejected``, for a
        human to read, leaving the sound ones; how many. The file is read again here, not reused from
        :meth:`waiting`: a run kept in between must stay. Raises OSError when the disk will not take them."""
        rejected, self.rejected = self.rejected, []
        if not rejected:
            return 0
        fd = os.open(self.rejected_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "ab") as f:
            f.write(b"".join(line + b"\n" for line in rejected))
        give_to(self.rejected_path, self.owner)
        sound = [ln for ln in self.path.read_bytes().split(b"\n") if ln.strip() and parse(ln) is not None]
        write_whole(self.path, "".join(ln.decode() + "\n" for ln in sound))
        give_to(self.path, self.owner)
        return len(rejected)

    def clear(self) -> None:
        self._memory.pop(str(self.path), None)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
