"""The raw counters of each node's last reading (table ``query_last``), kept for the next delta: one row per
entry (a statement, a table, an index) and one per family (the statements; each database) holding what tells
whether its counters went on (core/queries/delta.Epoch), and one per node (its role and timeline). Keys and
counters are JSON; only rows whose counters changed are written, rows of entries gone are deleted."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from opsd.core.queries.delta import DbFamily, Epoch, RelEntry, StatEntry, StatFamily

NODE, STATS, DB, STATEMENT, RELATION = "n", "s", "d", "q", "r"


@dataclass(frozen=True)
class NodeFacts:
    at: datetime
    started_at: datetime
    system_identifier: int
    timeline: int
    in_recovery: bool


@dataclass
class Previous:
    """A node's last reading: its facts, its statements and each database's relations (None/absent: never read)."""

    node: NodeFacts | None = None
    statements: StatFamily | None = None
    databases: dict[str, DbFamily] = field(default_factory=dict)


def _key(*parts: str | int) -> str:
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


def _dt(v: Any) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _epoch_json(e: Epoch) -> str:
    d = asdict(e)
    for k in ("at", "started_at", "reset_at", "discarded_at"):
        d[k] = d[k].isoformat() if d[k] is not None else None
    return json.dumps(d, separators=(",", ":"))


def _epoch(raw: dict[str, Any]) -> Epoch:
    return Epoch(at=datetime.fromisoformat(raw["at"]), started_at=datetime.fromisoformat(raw["started_at"]),
                 system_identifier=int(raw["system_identifier"]), reset_at=_dt(raw.get("reset_at")),
                 discarded_at=_dt(raw.get("discarded_at")), xacts=int(raw.get("xacts", 0)),
                 dealloc=int(raw.get("dealloc", 0)), all_visible=bool(raw.get("all_visible", True)))


def _node_json(n: NodeFacts) -> str:
    return json.dumps({"at": n.at.isoformat(), "started_at": n.started_at.isoformat(),
                       "system_identifier": n.system_identifier, "timeline": n.timeline,
                       "in_recovery": n.in_recovery}, separators=(",", ":"))


def _node(raw: dict[str, Any]) -> NodeFacts:
    return NodeFacts(datetime.fromisoformat(raw["at"]), datetime.fromisoformat(raw["started_at"]),
                     int(raw["system_identifier"]), int(raw["timeline"]), bool(raw["in_recovery"]))


_FIELDS = {t: tuple(f.name for f in fields(t)) for t in (StatEntry, RelEntry)}


def _values(entry: StatEntry | RelEntry) -> str:
    return json.dumps([getattr(entry, n) for n in _FIELDS[type(entry)]], separators=(",", ":"), ensure_ascii=False)


def load(c: sqlite3.Connection, node: str) -> Previous:
    """The node's last reading, decoded (a row that does not decode raises ValueError: the store's one line)."""
    prev = Previous()
    stats: dict[tuple[int, int, int], StatEntry] = {}
    rels: dict[str, dict[tuple[str, int], RelEntry]] = {}
    stats_epoch: Epoch | None = None
    db_epochs: dict[str, Epoch] = {}
    for r in c.execute("SELECT key, counters FROM query_last WHERE node = ?", (node,)):
        key, raw = json.loads(r[0]), json.loads(r[1])
        kind = key[0]
        if kind == NODE:
            prev.node = _node(raw)
        elif kind == STATS:
            stats_epoch = _epoch(raw)
        elif kind == DB:
            db_epochs[str(key[1])] = _epoch(raw)
        elif kind == STATEMENT:
            stats[(int(key[1]), int(key[2]), int(key[3]))] = StatEntry(*raw)
        elif kind == RELATION:
            rels.setdefault(str(key[1]), {})[(str(key[2]), int(key[3]))] = RelEntry(*raw)
    if stats_epoch is not None:
        prev.statements = StatFamily(stats_epoch, stats)
    prev.databases = {name: DbFamily(name, e, rels.get(name, {})) for name, e in db_epochs.items()}
    return prev


def _replace_entries(c: sqlite3.Connection, node: str, old: dict[str, StatEntry | RelEntry],
                     new: dict[str, StatEntry | RelEntry]) -> None:
    """Write the entries whose counters changed, delete the ones gone."""
    gone = [(node, k) for k in old if k not in new]
    c.executemany("DELETE FROM query_last WHERE node = ? AND key = ?", gone)
    c.executemany("INSERT OR REPLACE INTO query_last (node, key, counters) VALUES (?, ?, ?)",
                  [(node, k, _values(v)) for k, v in new.items() if old.get(k) != v])


def save_node(c: sqlite3.Connection, node: str, facts: NodeFacts) -> None:
    c.execute("INSERT OR REPLACE INTO query_last (node, key, counters) VALUES (?, ?, ?)",
              (node, _key(NODE), _node_json(facts)))


def save_statements(c: sqlite3.Connection, node: str, prev: StatFamily | None, cur: StatFamily) -> None:
    def keyed(f: StatFamily | None) -> dict[str, StatEntry | RelEntry]:
        return {_key(STATEMENT, *k): v for k, v in f.entries.items()} if f is not None else {}

    c.execute("INSERT OR REPLACE INTO query_last (node, key, counters) VALUES (?, ?, ?)",
              (node, _key(STATS), _epoch_json(cur.epoch)))
    _replace_entries(c, node, keyed(prev), keyed(cur))


def save_database(c: sqlite3.Connection, node: str, prev: DbFamily | None, cur: DbFamily) -> None:
    def keyed(f: DbFamily | None) -> dict[str, StatEntry | RelEntry]:
        return {_key(RELATION, f.dbname, *k): v for k, v in f.entries.items()} if f is not None else {}

    c.execute("INSERT OR REPLACE INTO query_last (node, key, counters) VALUES (?, ?, ?)",
              (node, _key(DB, cur.dbname), _epoch_json(cur.epoch)))
    _replace_entries(c, node, keyed(prev), keyed(cur))


def drop_database(c: sqlite3.Connection, node: str, family: DbFamily) -> None:
    """A database gone from the node: its last reading too."""
    c.execute("DELETE FROM query_last WHERE node = ? AND key = ?", (node, _key(DB, family.dbname)))
    c.executemany("DELETE FROM query_last WHERE node = ? AND key = ?",
                  [(node, _key(RELATION, family.dbname, *k)) for k in family.entries])

