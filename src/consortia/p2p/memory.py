"""An in-memory transport with the TLS transport's interface, for tests of higher layers.

``MemoryNetwork`` connects ``MemoryTransport``s in one event loop. Sending,
queueing (bounded, oldest dropped), the ``decode`` hook, handlers, ``receive()``
and the counters behave as in ``Transport`` — they are the same code
(``base.Endpoint``). Instead of certificates, a receiver accepts frames only from
the validators of its configuration (``refused.unknown`` otherwise). Links can be
cut and healed; frames sent over a cut link wait in the sender's queue, as they
would while a TLS connection is re-established. ``inject`` delivers arbitrary
bytes as if a peer had sent them (malformed or oversized frames in tests).

For seeded, replayable fault schedules use ``consortia.testing``'s simulator; this
transport is for exercising real asyncio code paths (drivers, handlers) quickly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from consortia.p2p.base import Decode, Endpoint, Handler, TransportLimits
from consortia.p2p.counters import Counters
from consortia.types.config import ChainConfig


class MemoryNetwork:
    def __init__(self) -> None:
        self._nodes: dict[str, MemoryTransport] = {}
        self._cut: set[frozenset[str]] = set()

    def link_up(self, a: str, b: str) -> bool:
        return (a in self._nodes and b in self._nodes and a != b
                and frozenset((a, b)) not in self._cut)

    def disconnect(self, a: str, b: str) -> None:
        self._cut.add(frozenset((a, b)))
        self._notify()

    def reconnect(self, a: str, b: str) -> None:
        self._cut.discard(frozenset((a, b)))
        self._notify()

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between nodes of different groups."""
        sets = [set(g) for g in groups]
        for i, g in enumerate(sets):
            for h in sets[i + 1:]:
                for a in g:
                    for b in h:
                        self._cut.add(frozenset((a, b)))
        self._notify()

    def heal(self) -> None:
        self._cut.clear()
        self._notify()

    async def inject(self, sender: str, target: str, payload: bytes) -> None:
        """Deliver ``payload`` to ``target`` as a frame from ``sender``, unchecked."""
        node = self._nodes.get(target)
        if node is not None:
            await node._arrive(sender, payload)

    def _join(self, node: MemoryTransport) -> None:
        if node.node_id in self._nodes:
            raise ValueError(f"{node.node_id} is already on this network")
        self._nodes[node.node_id] = node
        self._notify()

    def _leave(self, node: MemoryTransport) -> None:
        if self._nodes.get(node.node_id) is node:
            del self._nodes[node.node_id]
        self._notify()

    def _node(self, node_id: str) -> MemoryTransport | None:
        return self._nodes.get(node_id)

    def _notify(self) -> None:
        for node in list(self._nodes.values()):
            node._wake()


class MemoryTransport(Endpoint):
    def __init__(self, network: MemoryNetwork, node_id: str, peers: ChainConfig | Iterable[str],
                 *, decode: Decode | None = None, on_message: Handler | None = None,
                 limits: TransportLimits | None = None,
                 counters: Counters | None = None) -> None:
        ids = [v.id for v in peers.validators] if isinstance(peers, ChainConfig) else list(peers)
        super().__init__(node_id, ids, decode=decode, on_message=on_message,
                         limits=limits or TransportLimits(), counters=counters)
        self.network = network
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._started = False

    async def start(self) -> None:
        if self._started or self._closed:
            raise RuntimeError("a transport starts once")
        self._started = True
        self._bind_loop()
        self.network._join(self)
        self._sync_pumps()

    async def stop(self) -> None:
        if self._closed:
            return
        self._close_inbox()
        self.network._leave(self)
        pumps = list(self._pumps.values())
        for task in pumps:
            task.cancel()
        self._pumps.clear()
        if pumps:
            await asyncio.wait(pumps)
        self._changed()

    async def __aenter__(self) -> MemoryTransport:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def reconfigure(self, config: ChainConfig) -> None:
        self._set_peers(v.id for v in config.validators)
        self._sync_pumps()
        self.network._notify()

    def connected_peers(self) -> set[str]:
        if not self._started or self._closed:
            return set()
        out = set()
        for p in self._queues:
            other = self.network._node(p)
            if (other is not None and self.network.link_up(self.node_id, p)
                    and self.node_id in other._queues):
                out.add(p)
        return out

    def _sync_pumps(self) -> None:
        if not self._started or self._closed:
            return
        for p in list(self._pumps):
            if p not in self._queues:
                self._pumps.pop(p).cancel()
        loop = asyncio.get_running_loop()
        for p in self._queues:
            if p not in self._pumps:
                self._pumps[p] = loop.create_task(self._pump(p), name=f"mem-pump-{p}")

    def _wake(self) -> None:
        for q in self._queues.values():
            q.wakeup.set()
        self._changed()

    async def _pump(self, peer_id: str) -> None:
        while True:
            queue = self._queues.get(peer_id)
            if queue is None:
                return
            target = self.network._node(peer_id)
            if not queue or target is None or not self.network.link_up(self.node_id, peer_id):
                queue.wakeup.clear()
                await queue.wakeup.wait()
                continue
            payload = queue.pop()
            self.counters.inc("frames.out")
            self.counters.inc("bytes.out", len(payload))
            await target._arrive(self.node_id, payload)

    async def _arrive(self, sender: str, payload: bytes) -> None:
        if self._closed:
            return
        if sender not in self._queues:
            self.counters.inc("refused.unknown")
            return
        if len(payload) > self.limits.max_frame_bytes:
            self.counters.inc("dropped.oversize")
            return
        if not payload:
            return
        await self._deliver(sender, payload)
