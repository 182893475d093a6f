"""What every transport shares: limits, per-peer send queues, delivery, counters.

``Endpoint`` implements the caller-facing half of a transport — ``send``,
``broadcast``, ``receive``/``async for`` and the ``decode`` hook — identically for the
TLS transport and the in-memory one, so higher layers see the same behaviour under
both.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from consortia.p2p.counters import Counters
from consortia.p2p.framing import DEFAULT_MAX_FRAME
from consortia.types.config import ChainConfig
from consortia.types.errors import BadSignature, TooLarge, Unavailable

log = logging.getLogger("consortia.p2p")

Decode = Callable[[bytes], Any]
"""Turns a frame's payload into a message; any exception drops the frame (counted)."""
Handler = Callable[[str, Any], Awaitable[None] | None]
"""Called with (peer id, message) for every accepted frame, in arrival order per peer."""


class TransportClosed(Unavailable):
    """The transport was stopped; nothing more will be received."""

    code = "transport_closed"


@dataclass(frozen=True, slots=True)
class TransportLimits:
    max_frame_bytes: int = DEFAULT_MAX_FRAME
    """Largest payload sent or accepted; a longer announced frame closes the connection."""
    queue_frames: int = 1024
    """Frames waiting per peer; when full, the oldest is dropped (``dropped.queue_full``)."""
    queue_bytes: int = 64 * 1024 * 1024
    """Payload bytes waiting per peer, same policy."""
    inbox_frames: int = 10_000
    """Decoded messages awaiting ``receive()`` (no handler): readers wait when it is full."""
    connect_timeout: float = 5.0
    """TCP connect + TLS handshake of an outbound connection."""
    handshake_timeout: float = 5.0
    """TLS handshake of an inbound connection, and the hello exchange of any."""
    idle_timeout: float = 30.0
    """No frame (keepalives included) for this long closes the connection."""
    keepalive_interval: float = 10.0
    """An idle sender sends a keepalive (and re-checks the peer's certificate) this often."""
    body_timeout: float = 60.0
    """Once a header is read, its whole payload must arrive within this."""
    write_timeout: float = 30.0
    """A frame must leave the write buffer within this, or the connection is closed."""
    backoff_initial: float = 0.2
    backoff_max: float = 2.0
    """Ceiling of the redial delay (see ``backoff_delay``): a validator back from a crash
    or a healed partition is redialed within this, and a dead peer costs one connection
    attempt per dialer every 1-2 s at most (plus ``connect_timeout`` when it does not
    answer at all)."""
    max_pending_handshakes: int = 64
    """Inbound connections still in their handshake; more are closed at once (``busy``)."""
    close_timeout: float = 2.0

    def __post_init__(self) -> None:
        if self.max_frame_bytes < 1 or self.max_frame_bytes > 2**32 - 1:
            raise ValueError("max_frame_bytes must be between 1 and 2**32-1")
        if self.queue_frames < 1 or self.queue_bytes < self.max_frame_bytes:
            raise ValueError("a send queue must hold at least one frame of the largest size")
        if self.keepalive_interval >= self.idle_timeout:
            raise ValueError("keepalive_interval must be shorter than idle_timeout")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("backoff must satisfy 0 < backoff_initial <= backoff_max")


class PeerTransport(Protocol):
    """The interface consensus drivers program against (TLS or in-memory)."""

    node_id: str
    counters: Counters

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def send(self, peer_id: str, payload: bytes) -> None: ...

    def broadcast(self, payload: bytes) -> None: ...

    async def receive(self) -> tuple[str, Any]: ...

    def __aiter__(self) -> AsyncIterator[tuple[str, Any]]: ...

    def reconfigure(self, config: ChainConfig) -> None: ...

    def connected_peers(self) -> set[str]: ...


class SendQueue:
    """A peer's bounded FIFO of payloads; overflow drops the oldest."""

    __slots__ = ("bytes", "frames", "wakeup")

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.bytes = 0
        self.wakeup = asyncio.Event()

    def push(self, payload: bytes, limits: TransportLimits) -> int:
        """Append; returns how many old frames were dropped to make room."""
        self.frames.append(payload)
        self.bytes += len(payload)
        dropped = 0
        while len(self.frames) > limits.queue_frames or self.bytes > limits.queue_bytes:
            self.bytes -= len(self.frames.popleft())
            dropped += 1
        self.wakeup.set()
        return dropped

    def pop(self) -> bytes:
        payload = self.frames.popleft()
        self.bytes -= len(payload)
        return payload

    def __len__(self) -> int:
        return len(self.frames)


class Endpoint(abc.ABC):
    """Send queues, delivery and counters of one node's transport."""

    def __init__(self, node_id: str, peer_ids: Iterable[str], *, decode: Decode | None,
                 on_message: Handler | None, limits: TransportLimits,
                 counters: Counters | None) -> None:
        self.node_id = node_id
        self.limits = limits
        self.counters = counters if counters is not None else Counters()
        self._decode = decode
        self._on_message = on_message
        self._queues: dict[str, SendQueue] = {}
        self._inbox: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(limits.inbox_frames)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._closed = False
        self._watchers: list[asyncio.Future[None]] = []
        self._set_peers(peer_ids)

    # -- peers -------------------------------------------------------------------------------

    def _set_peers(self, peer_ids: Iterable[str]) -> tuple[set[str], set[str]]:
        """Make the send queues match ``peer_ids``; returns (added, removed)."""
        want = {p for p in peer_ids if p != self.node_id}
        added, removed = want - set(self._queues), set(self._queues) - want
        for p in removed:
            q = self._queues.pop(p)
            q.wakeup.set()  # a writer waiting on it notices the peer is gone
        for p in added:
            self._queues[p] = SendQueue()
        return added, removed

    @property
    def peers(self) -> set[str]:
        """Every other validator of the configuration in force."""
        return set(self._queues)

    def queued(self, peer_id: str) -> int:
        q = self._queues.get(peer_id)
        return len(q) if q is not None else 0

    # -- sending -----------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def send(self, peer_id: str, payload: bytes) -> None:
        """Queue ``payload`` for ``peer_id``; never blocks, never waits for a connection.

        Safe from any thread (off the event loop thread it hops onto the loop). Raises
        ``ValueError`` for an empty payload (length 0 is the keepalive) and ``TooLarge``
        above ``max_frame_bytes``; an unknown peer is counted (``dropped.unknown_peer``).
        """
        payload = self._checked(payload)
        loop = self._loop
        if (loop is not None and self._loop_thread != threading.get_ident()
                and not loop.is_closed()):
            loop.call_soon_threadsafe(self._enqueue, peer_id, payload)
            return
        self._enqueue(peer_id, payload)

    def broadcast(self, payload: bytes) -> None:
        """``send`` to every other validator of the configuration in force."""
        payload = self._checked(payload)
        loop = self._loop
        if (loop is not None and self._loop_thread != threading.get_ident()
                and not loop.is_closed()):
            loop.call_soon_threadsafe(self._broadcast, payload)
            return
        self._broadcast(payload)

    def _broadcast(self, payload: bytes) -> None:
        for peer_id in sorted(self._queues):
            self._enqueue(peer_id, payload)

    def _checked(self, payload: bytes) -> bytes:
        if not payload:
            raise ValueError("an empty payload cannot be sent (length 0 is the keepalive)")
        if len(payload) > self.limits.max_frame_bytes:
            raise TooLarge(f"payload of {len(payload)} bytes exceeds the frame cap of "
                           f"{self.limits.max_frame_bytes}")
        return bytes(payload)

    def _enqueue(self, peer_id: str, payload: bytes) -> None:
        if self._closed:
            return
        q = self._queues.get(peer_id)
        if q is None:
            self.counters.inc("dropped.unknown_peer")
            return
        dropped = q.push(payload, self.limits)
        if dropped:
            self.counters.inc("dropped.queue_full", dropped)

    # -- receiving ---------------------------------------------------------------------------

    async def _deliver(self, peer_id: str, payload: bytes) -> None:
        """Decode (hook) and hand over one frame; never raises for the peer's bytes."""
        self.counters.inc("frames.in")
        self.counters.inc("bytes.in", len(payload))
        message: Any = payload
        if self._decode is not None:
            try:
                message = self._decode(payload)
            except BadSignature as exc:
                self.counters.inc("dropped.bad_signature")
                log.debug("dropped a badly signed frame from %s: %s", peer_id, exc)
                return
            except Exception as exc:  # noqa: BLE001 - any failure of the hook drops the frame
                self.counters.inc("dropped.malformed")
                log.debug("dropped a malformed frame from %s: %r", peer_id, exc)
                return
        if self._on_message is None:
            await self._inbox.put((peer_id, message))
            return
        try:
            result = self._on_message(peer_id, message)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.counters.inc("errors.handler")
            log.exception("the message handler failed on a message from %s", peer_id)

    async def receive(self) -> tuple[str, Any]:
        """The next (peer id, message) when no handler was given; ``TransportClosed``
        once the transport is stopped."""
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)  # wake every other receiver too
            raise TransportClosed("the transport is stopped")
        return item

    async def __aiter__(self) -> AsyncIterator[tuple[str, Any]]:
        while True:
            try:
                yield await self.receive()
            except TransportClosed:
                return

    def _close_inbox(self) -> None:
        self._closed = True
        while True:
            try:
                self._inbox.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._inbox.get_nowait()

    # -- connection state --------------------------------------------------------------------

    @abc.abstractmethod
    def connected_peers(self) -> set[str]:
        """Peers with an open, authorized connection (each transport knows its own)."""

    def _changed(self) -> None:
        watchers, self._watchers = self._watchers, []
        for w in watchers:
            if not w.done():
                w.set_result(None)

    async def wait_connected(self, peers: Iterable[str] | None = None, *,
                             timeout: float = 10.0) -> None:
        """Wait until every one of ``peers`` (default: all) is connected; ``TimeoutError``."""
        want = set(peers) if peers is not None else None
        async with asyncio.timeout(timeout):
            while not (want if want is not None else self.peers) <= self.connected_peers():
                fut = asyncio.get_running_loop().create_future()
                self._watchers.append(fut)
                await fut
