"""What the restore plan read in archived WAL segments, remembered in the state directory: a segment never
changes once archived, so a second ``restore --dry-run``, the daemon's window refresh and ``check`` decode only
segments they have not read before. One file per stanza, archive id and cluster system identifier (a stanza
deleted and created again reuses archive id 15-1 and segment names, never the system identifier), keyed by
segment name and archive time, pruned to what the repository lists, replaced atomically. An unreadable cache,
an older format or another cluster's is an empty one: it is only ever a shortcut, never mixed in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from opsd.adapters import files
from opsd.core.wal import SegmentFacts, Stamped
from opsd.errors import OpsdError
from opsd.log import get_logger

VERSION = 2  # 1: no system identifier in the file (named without one)
MISS = object()


def cache_name(kind: str, stanza: str, archive_id: str | None, system_id: int | None) -> str:
    """The file of one cache (``segments``, ``points``) of one cluster's archive in a stanza."""
    return f"{kind}-{stanza}-{archive_id or 'none'}-{system_id or 'unknown'}.json"


def _stamped(s: Stamped) -> list[Any]:
    return [s.xid, s.lsn, s.time.isoformat()]


def _unstamped(v: list[Any]) -> Stamped:
    return Stamped(int(v[0]), str(v[1]), datetime.fromisoformat(str(v[2])))


def encode_facts(f: SegmentFacts | None) -> Any:
    return None if f is None else {"ended": [_stamped(s) for s in f.ended], "restarts": list(f.restarts)}


def decode_facts(v: Any) -> SegmentFacts | None:
    if v is None:
        return None
    return SegmentFacts(tuple(_unstamped(s) for s in v["ended"]), tuple(str(r) for r in v["restarts"]))


@dataclass
class SegmentCache:
    """``get``/``put`` by (kind, segment name); ``save`` writes it back if anything was added."""

    path: Path | None  # None: remember nothing (no state directory to keep it in)
    stamps: dict[str, int]  # segment name -> archive time (epoch seconds) of what the repository lists now
    user: str
    system_id: int | None = None  # the cluster whose archive this is: a file of another one is not read
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: bool = False
    hits: int = 0

    @classmethod
    def load(cls, path: Path | None, stamps: dict[str, int], user: str, system_id: int | None = None
             ) -> SegmentCache:
        cache = cls(path, stamps, user, system_id)
        if path is None:
            return cache
        try:
            data = json.loads(path.read_text())
            if data.get("version") == VERSION and data.get("system_id") == system_id:
                cache.entries = {k: dict(v) for k, v in data["segments"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return cache

    def _key(self, name: str) -> str | None:
        stamp = self.stamps.get(name)
        return None if stamp is None else f"{name}@{stamp}"

    def get(self, kind: str, name: str) -> Any:
        key = self._key(name)
        entry = self.entries.get(key) if key else None
        if entry is None or kind not in entry:
            return MISS
        self.hits += 1
        return entry[kind]

    def put(self, kind: str, name: str, value: Any) -> None:
        key = self._key(name)
        if key is not None and self.path is not None:
            self.entries.setdefault(key, {})[kind] = value
            self.changed = True

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        listed = {f"{n}@{t}" for n, t in self.stamps.items()}
        kept = {k: v for k, v in self.entries.items() if k in listed}
        try:
            files.ensure_dir(self.path.parent, self.user)
            files.write_whole(self.path, json.dumps({"version": VERSION, "system_id": self.system_id,
                                                     "segments": kept}))
            files.give_to(self.path, self.user)
        except (OpsdError, OSError) as e:  # a cache that cannot be written only costs a re-read next time
            get_logger().warning("walcache.unwritable", path=str(self.path), error=str(e))
