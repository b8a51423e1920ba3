"""Blocking trees from lock waiters (pure): who blocks whom, the root blocker and its state, depth, number of
waiters, longest wait, lock modes and relations. Query text is masked (literals as '?') and cut unless the
operator asks for raw text (``health.show_query_text``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opsd.core.pgtext import mask_literals
from opsd.core.records.health import LockNode, LockTree
from opsd.db.queries import LockRow, SessionRow, WaiterRow

MAX_HOLDS = 5


def query_text(show_raw: bool, length: int) -> Callable[[str], str]:
    def render(q: str) -> str:
        if length <= 0:
            return ""
        text = " ".join((q if show_raw else mask_literals(q)).split())
        return text if len(text) <= length else text[: length - 1] + "…"

    return render


def _waiting_for(pid: int, locks: Sequence[LockRow]) -> tuple[str | None, float | None, str | None]:
    mine = [lk for lk in locks if lk.pid == pid]
    wait = next((lk for lk in mine if not lk.granted), None)
    if wait is None:
        return None, None, None
    relation = wait.relation
    if relation is None and wait.locktype in ("transactionid", "tuple"):
        tup = next((lk for lk in mine if lk.locktype == "tuple" and lk.relation), None)
        relation = f"row in {tup.relation}" if tup else None
    target = wait.relation or f"{wait.locktype}" + (f" ({relation})" if relation else "")
    return f"{wait.mode} on {target}", wait.wait_age, relation


def _holds(pid: int, locks: Sequence[LockRow]) -> list[str]:
    held = [f"{lk.mode} on {lk.relation}" for lk in locks
            if lk.pid == pid and lk.granted and lk.locktype == "relation" and lk.relation
            and lk.mode != "AccessShareLock" and not lk.relation.startswith("pg_")]
    return held[:MAX_HOLDS]


def build_trees(waiters: Sequence[WaiterRow], sessions: dict[int, SessionRow], locks: Sequence[LockRow],
                render: Callable[[str], str]) -> list[LockTree]:
    children: dict[int, list[int]] = {}
    for w in waiters:
        for b in w.blocked_by:
            children.setdefault(b, []).append(w.pid)
    waiting = {w.pid for w in waiters}
    roots = sorted(b for b in children if b not in waiting)
    if not roots and children:  # everyone waits on someone: a deadlock being detected right now
        roots = [min(children)]
    seen: set[int] = set()
    relations: dict[int, str] = {}

    def node(pid: int) -> LockNode:
        seen.add(pid)
        s = sessions.get(pid)
        waiting_for, wait_s, rel = _waiting_for(pid, locks)
        if rel:
            relations[pid] = rel
        n = LockNode(pid=pid, state=s.state if s else "gone", user=s.usename if s else "",
                     database=s.datname if s else "", application=s.application_name if s else "",
                     client=s.client if s else "", xact_age=s.xact_age if s else None, waiting_for=waiting_for,
                     wait_seconds=wait_s if wait_s is not None else (s.state_age if s else None),
                     holds=_holds(pid, locks), query=render(s.query) if s else "")
        n.children = [node(c) for c in sorted(children.get(pid, [])) if c not in seen]
        return n

    trees = []
    for r in roots:  # a session blocked by two roots shows in both trees
        seen.clear()
        relations.clear()
        root = node(r)
        members = list(_walk(root))[1:]
        trees.append(LockTree(
            root=root, depth=_depth(root), waiters=len(members),
            longest_wait=max((m.wait_seconds or 0.0 for m in members), default=0.0),
            modes=sorted({m.waiting_for.split(" on ")[0] for m in members if m.waiting_for}),
            relations=sorted(set(relations.values())),
        ))
    return sorted(trees, key=lambda t: (-t.waiters, -t.longest_wait))


def _walk(n: LockNode) -> list[LockNode]:
    out = [n]
    for c in n.children:
        out += _walk(c)
    return out


def _depth(n: LockNode) -> int:
    return 1 + max((_depth(c) for c in n.children), default=0) if n.children else 0

