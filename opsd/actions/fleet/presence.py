"""A drill host's presence in the fleet: one etcd lease, kept alive every third of ``[fleet] ttl`` by a thread of
the daemon, with the host's entry (capacity, what it drills) and its claims attached to it. A host that dies or
stops answering loses the lease after ``ttl``: its entry and claims vanish and another host takes its clusters.
A lease found expired while a drill runs (the host was paused or cut off past ``ttl``) stops that drill at once
and counts a lease loss: its result will not be recorded as the claim's (the claim's revision fences it)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opsd.actions.fleet.store import FleetStore, Held, host_name
from opsd.adapters.etcd import EtcdRefused
from opsd.adapters.files import free_bytes
from opsd.context import Context
from opsd.core.records.fleet import Capacity, DrillHostEntry
from opsd.errors import OpsdError
from opsd.log import get_logger


class FleetUnavailable(OpsdError):
    """No lease: etcd cannot be reached or has no quorum; no drill starts without a claim."""


@dataclass
class _Drilling:
    on_lost: Callable[[], None]
    lost: bool = False


@dataclass
class Presence:
    ctx: Context
    store: FleetStore | None = None
    lease_id: int | None = None
    losses: int = 0  # lease losses during drills, since this daemon started
    base_losses: int = 0  # counted by earlier daemons (fleet.json), so the metric is a counter across restarts
    error: str | None = None
    _drilling: dict[str, _Drilling] = field(default_factory=dict)
    _shown: tuple[int, tuple[str, ...]] | None = None  # the host entry as last written
    _confirmed: tuple[float, int] = (0.0, 0)  # (monotonic time the last confirmed keepalive was sent, its TTL)
    _pending: list[Held] = field(default_factory=list)  # claims to give back (see give_back)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the daemon's side
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fleet-presence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The lease revoked: the host's entry and claims vanish at once (a clean stop frees its clusters)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ctx.settings.fleet.timeout.total_seconds() * 3)
        with self._lock:
            if self.store is not None and self.lease_id is not None:
                try:
                    self.store.etcd.revoke(self.lease_id)
                except OpsdError as e:
                    get_logger().warning("fleet.revoke_failed", error=str(e))
            if self.store is not None:
                self.store.close()
            self.store, self.lease_id = None, None

    def _loop(self) -> None:
        every = max(0.5, self.ctx.settings.fleet.ttl.total_seconds() / 3)
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception as e:  # a bug must not kill the thread silently
                get_logger().error("fleet.presence_error", error=f"{type(e).__name__}: {e}", exc_info=True)
            self._stop.wait(every)

    def beat(self) -> None:
        """Keep the lease alive (a new one when it was lost), and the host's entry current."""
        with self._lock:
            try:
                self._keep()
                self.error = None
            except OpsdError as e:
                if self.error is None:
                    get_logger().error("fleet.unreachable", error=str(e))
                self.error = str(e)
                if isinstance(e, EtcdRefused) and self.store is not None:  # a rotated password, say: the next
                    self.store.close()  # beat builds the client again, reading the password file anew
                    self.store = None
                if self.lease_id is not None and self._expired():  # cut off from etcd past its lease: etcd
                    self._lost()  # has given the claims to others, so this host's drill stops now, not later

    def _expired(self) -> bool:
        """The lease may have run out: no keepalive confirmed for its TTL less one request's timeout (counted
        from when the last confirmed keepalive was sent; early rather than late)."""
        margin = self.ctx.settings.fleet.timeout.total_seconds()
        return time.monotonic() - self._confirmed[0] >= self._confirmed[1] - margin

    def _keep(self) -> None:
        if self.store is None:
            self.store = FleetStore.of(self.ctx.settings)
        ttl = int(max(2, self.ctx.settings.fleet.ttl.total_seconds()))
        if self.lease_id is not None:
            sent = time.monotonic()
            left = self.store.etcd.keepalive(self.lease_id)
            if left <= 0:
                self._lost()
            else:
                self._confirmed = (sent, left)
        if self.lease_id is None:
            sent = time.monotonic()
            self.lease_id = self.store.etcd.grant(ttl)
            self._confirmed = (sent, ttl)
            get_logger().info("fleet.lease_granted", lease=self.lease_id, ttl=ttl)
        self._release_pending()
        shown = (self.lease_id, tuple(sorted(self._drilling)))
        if shown != self._shown:  # written when it changes only: the lease keeps it alive, not rewrites
            self.store.put_host(DrillHostEntry(host=host_name(self.ctx.settings), capacity=capacity(self.ctx),
                                               drilling=list(shown[1]), updated_at=self.ctx.now()), self.lease_id)
            self._shown = shown

    def _release_pending(self) -> None:
        """Claims whose drill could not give them back (etcd failed then): released now, while still this
        lease's, or the cluster would stay claimed as long as this host lives."""
        assert self.store is not None
        while self._pending:
            self.store.release(self._pending[0])
            self._pending.pop(0)

    def give_back(self, held: Held) -> None:
        """Release ``held`` now, or at the next beats until etcd answers (never raises)."""
        with self._lock:
            self._pending.append(held)
            try:
                if self.store is not None:
                    self._release_pending()
            except OpsdError as e:
                get_logger().warning("fleet.release_later", cluster=held.cluster, error=str(e))

    def _lost(self) -> None:
        get_logger().error("fleet.lease_lost", lease=self.lease_id, drilling=sorted(self._drilling))
        self.lease_id, self._pending = None, []  # the lease's claims went with it
        for name, d in self._drilling.items():
            if not d.lost:
                d.lost = True
                self.losses += 1
                get_logger().error("fleet.claim_lost", cluster=name)
                d.on_lost()

    # ------------------------------------------------------------------ the drill job's side
    def lease(self) -> int:
        """The live lease, asked for now if there is none; FleetUnavailable when etcd does not answer."""
        self.beat()
        with self._lock:
            if self.lease_id is None or self.error is not None:  # a lease etcd cannot confirm is no lease
                why = self.error or "none granted"
                raise FleetUnavailable(f"fleet {self.ctx.settings.fleet.name}: no lease: {why}: no drill starts "
                                       "without a claim", hint="docs/fleet.md, 'When something fails'")
            return self.lease_id

    def begin(self, cluster: str, on_lost: Callable[[], None]) -> None:
        with self._lock:
            self._drilling[cluster] = _Drilling(on_lost)
        self.beat()  # the host entry says what it drills

    def end(self, cluster: str) -> bool:
        """The drill of ``cluster`` ended; True if its lease was lost meanwhile."""
        self.beat()  # a lease that expired while this host was paused is found now, not at the next beat
        with self._lock:
            d = self._drilling.pop(cluster, None)
        return d is not None and d.lost


def capacity(ctx: Context) -> Capacity:
    f = ctx.settings.fleet
    space = int(f.scratch_space) if f.scratch_space is not None else free_bytes(ctx.settings.scratch_dir) or 0
    return Capacity(scratch_bytes=space, cores=f.cores or os.cpu_count() or 1, drills=1)


def presence_for(ctx: Context) -> Presence | None:
    """The daemon's presence in its fleet: a drill host only (a cluster host holds no lease)."""
    s = ctx.settings
    if not s.fleet.enabled or s.fleet.role_for(s.opsd.role) != "drill":
        return None
    from opsd.actions.fleet.state import load_state

    saved = load_state(s)
    return Presence(ctx, base_losses=saved.lease_losses if saved else 0)
