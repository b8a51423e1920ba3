"""Answers of pgBackRest read ahead: a restore plan starts ``info --set`` for the set it will likely use while it
reads the WAL, and takes the answer when it asks. Kept per (config, stanza, set) for a minute at most: each job
builds its own adapter, and a set's manifest never changes but the stanza's list of sets does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
FRESH = 60.0  # seconds an answer read ahead is used

_PENDING: dict[tuple[str, ...], tuple[float, Future[object]]] = {}
_LOCK = threading.Lock()


def start(key: tuple[str, ...], fn: Callable[[], object]) -> None:
    """Run ``fn`` in the background for ``key`` (unless it already is); stale entries are dropped."""
    with _LOCK:
        now = time.monotonic()
        for old in [k for k, (asked, _) in _PENDING.items() if now - asked > FRESH]:
            del _PENDING[old]
        if key in _PENDING:
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsd-ahead")
        _PENDING[key] = (now, pool.submit(fn))
        pool.shutdown(wait=False)


def take(key: tuple[str, ...]) -> Future[object] | None:
    """The answer read ahead for ``key`` if it is fresh (used once), else None."""
    with _LOCK:
        got = _PENDING.pop(key, None)
    return got[1] if got is not None and time.monotonic() - got[0] < FRESH else None


def pending() -> list[tuple[str, ...]]:
    with _LOCK:
        return list(_PENDING)


def clear() -> None:
    with _LOCK:
        _PENDING.clear()
