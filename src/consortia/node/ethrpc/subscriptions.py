"""WebSocket connections: JSON-RPC over messages, eth_subscribe / eth_unsubscribe, and the
one reader of the backend's new-heads stream that fans it out.

``newHeads`` sends each committed header; ``logs`` sends each matching log of each
committed block, one notification per log, in the ``eth_subscription`` format::

    {"jsonrpc": "2.0", "method": "eth_subscription",
     "params": {"subscription": "0x…", "result": {…}}}

Memory is bounded per connection: answers and notifications wait in a queue of
``ws_send_queue`` messages; a client that does not read fast enough for its subscriptions
fills it, and the connection is closed with 1008 "subscription backlog exceeded" (geth
also drops slow subscribers) — never buffered without bound. A subscription starts after
its id has been answered, so no notification precedes the answer that names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from consortia.node.ethrpc.backend import EthBackend
from consortia.node.ethrpc.codec import data
from consortia.node.ethrpc.dispatch import Dispatcher
from consortia.node.ethrpc.encode import header_json, log_json
from consortia.node.ethrpc.errors import LIMIT_EXCEEDED, RpcError, invalid_params
from consortia.node.ethrpc.filters import Filters, parse_filter
from consortia.node.ethrpc.limits import RpcLimits
from consortia.node.ethrpc.methods import Handler
from consortia.node.ethrpc.params import Args
from consortia.node.ethrpc.types import Address, NewHead, TopicFilter, log_matches

log = logging.getLogger("consortia.node.ethrpc")
Listener = Callable[[NewHead], None]
BACKLOG_CLOSE_CODE = 1008
BACKLOG_REASON = "subscription backlog exceeded"


class HeadHub:
    """Holds the one iterator of ``backend.new_heads()`` while anyone listens, and calls
    every listener (synchronously, on the event loop) with each new head."""

    def __init__(self, backend: EthBackend) -> None:
        self.backend = backend
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, listener: Listener) -> None:
        self._listeners.add(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="eth-heads")

    def remove(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        if not self._listeners and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        try:
            async for head in self.backend.new_heads():
                for listener in list(self._listeners):
                    listener(head)
        except asyncio.CancelledError:
            raise
        except Exception:  # the stream broke: logged; the next subscriber restarts it
            log.exception("the backend's new-heads stream failed")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        self._listeners.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(slots=True)
class _Subscription:
    kind: str
    addresses: tuple[Address, ...] = ()
    topics: TopicFilter = ()
    active: bool = False


class WsConnection:
    """One WebSocket client: its requests, its subscriptions, its bounded send queue."""

    def __init__(self, ws: WebSocket, handlers: dict[str, Handler], filters: Filters,
                 hub: HeadHub, limits: RpcLimits) -> None:
        self.ws = ws
        self.filters = filters
        self.hub = hub
        self.limits = limits
        self.subscriptions: dict[str, _Subscription] = {}
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=limits.ws_send_queue)
        self._overflow = asyncio.Event()
        self._listening = False
        own = {**handlers, **filters.handlers(owner=self),
               "eth_subscribe": self.subscribe, "eth_unsubscribe": self.unsubscribe}
        self.dispatcher = Dispatcher(own, limits)

    async def run(self) -> None:
        """Serve the connection until the client leaves or falls too far behind."""
        await self.ws.accept()
        tasks = [asyncio.create_task(self._read(), name="eth-ws-read"),
                 asyncio.create_task(self._write(), name="eth-ws-write"),
                 asyncio.create_task(self._overflow.wait(), name="eth-ws-overflow")]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:  # not awaited: the connection is done whatever they do
                task.cancel()
            self._stop_listening()
            self.subscriptions.clear()
            self.filters.drop_owner(self)
        if self._overflow.is_set():
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await self.ws.close(code=BACKLOG_CLOSE_CODE, reason=BACKLOG_REASON)

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            body: str | bytes | None = message.get("text")
            if body is None:
                body = message.get("bytes") or b""
            if len(body) > self.limits.max_body_bytes:
                await self.ws.close(code=1009, reason="message too big")
                return
            answer = await self.dispatcher.handle_bytes(body)
            if answer is not None:
                await self._queue.put(answer)  # answers wait for room: the reader slows
            for sub in self.subscriptions.values():
                sub.active = True

    async def _write(self) -> None:
        while True:
            message = await self._queue.get()
            await self.ws.send_text(message.decode())

    def offer(self, message: bytes) -> None:
        """Queue a notification, or mark the connection overflowed when it is full."""
        if self._overflow.is_set():
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("closing a WebSocket client %d messages behind",
                        self.limits.ws_send_queue)
            self._overflow.set()

    # --- eth_subscribe / eth_unsubscribe ------------------------------------------------

    async def subscribe(self, params: list[Any]) -> str:
        args = Args(params, ("subscription", "filter"), 1)
        kind = args.get(0)
        if kind == "newHeads":
            Args(params, ("subscription",), 1)
            sub = _Subscription("newHeads")
        elif kind == "logs":
            criteria = parse_filter(args.get(1), args.label(1), allow_hash=False)
            sub = _Subscription("logs", criteria.addresses, criteria.topics)
        else:
            raise invalid_params(args.label(0), f"unsupported subscription type {kind!r} "
                                                "(newHeads, logs)")
        if len(self.subscriptions) >= self.limits.max_subscriptions:
            raise RpcError(LIMIT_EXCEEDED, f"too many subscriptions on this connection "
                                           f"(limit {self.limits.max_subscriptions})")
        sub_id = data(secrets.token_bytes(16))
        self.subscriptions[sub_id] = sub
        if not self._listening:
            self.hub.add(self._on_head)
            self._listening = True
        return sub_id

    async def unsubscribe(self, params: list[Any]) -> bool:
        args = Args(params, ("id",), 1)
        raw = args.get(0)
        if not isinstance(raw, str):
            raise invalid_params(args.label(0), "expected a subscription id")
        found = self.subscriptions.pop(raw.lower(), None) is not None
        if not self.subscriptions:
            self._stop_listening()
        return found

    def _stop_listening(self) -> None:
        if self._listening:
            self.hub.remove(self._on_head)
            self._listening = False

    def _on_head(self, head: NewHead) -> None:
        header: dict[str, Any] | None = None
        for sub_id, sub in list(self.subscriptions.items()):
            if not sub.active:
                continue
            if sub.kind == "newHeads":
                header = header or header_json(head.header)
                self.offer(_notification(sub_id, header))
                continue
            for entry in head.logs:
                if log_matches(entry, sub.addresses, sub.topics):
                    self.offer(_notification(sub_id, log_json(entry)))


def _notification(sub_id: str, result: Any) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                         "params": {"subscription": sub_id, "result": result}})
