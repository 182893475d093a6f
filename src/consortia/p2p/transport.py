"""Mutual-TLS TCP transport between the validators of one chain.

One connection per pair of validators, dialed by the one whose id sorts lower and
used in both directions. A validator that starts knocks once on every lower peer (a
connection the peer refuses by the direction rule, after the identity rule) so that the
peer redials it at once instead of after its backoff. A connection is::

    TCP connect ─ TLS 1.3 handshake, both certificates required, trust roots = the
                  organization CAs of the configuration in force
                ─ identity rule (auth.authorize): the presented certificate is exactly
                  a listed validator's and passes Membership.validate(validator, now)
                ─ hello exchange (framing.hello): protocol version and chain id
                ─ frames both ways: 4-byte big-endian length + payload, length 0 = keepalive

Everything a peer can get wrong — a refused handshake, a frame over the cap, a
payload the owner's ``decode`` hook rejects, bytes that are not TLS at all — is
counted (``counters``) and costs at most that connection or that frame; it never
raises out of the transport. See docs/spec/transport.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from consortia.identity.membership import Membership
from consortia.p2p.auth import PeerRefused, authorize
from consortia.p2p.base import Decode, Endpoint, Handler, TransportLimits
from consortia.p2p.counters import Counters
from consortia.p2p.framing import (
    KEEPALIVE,
    MAX_HELLO_BYTES,
    BadHello,
    FrameTooLarge,
    check_hello,
    frame,
    header,
    hello,
    read_frame,
)
from consortia.p2p.tls import NodeCredentials, client_context, refusal_of, server_context
from consortia.types.config import ChainConfig
from consortia.types.errors import ConfigError

log = logging.getLogger("consortia.p2p")

Address = tuple[str, int]
_STREAM_LIMIT = 256 * 1024
_WRITE_BATCH = 1024 * 1024
_LOG_EVERY_S = 10.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def backoff_delay(attempts: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Delay before redial number ``attempts`` (0 after a connection that worked):
    exponential with a ceiling, "equal jitter" — uniform in [d/2, d] with
    d = min(maximum, initial * 2**attempts)."""
    d = min(maximum, initial * 2.0 ** min(attempts, 32))
    return d / 2 + rng.uniform(0.0, d / 2)


class _Accept(asyncio.Protocol):
    """Accepts TCP; reading stays paused until TLS takes the connection over, so not a
    byte is consumed outside the TLS layer."""

    def __init__(self, owner: Transport) -> None:
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports (the node runs under uvicorn, which
        # picks uvloop when installed) implement the interface without subclassing it.
        raw = cast(asyncio.Transport, transport)
        raw.pause_reading()
        self._owner._accepted(raw)


@dataclass(eq=False)
class _Connection:
    peer_id: str
    cert_der: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    outbound: bool
    task: asyncio.Task[None] | None = None
    reason: str = ""
    opened: float = field(default_factory=time.monotonic)

    def close(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
        if self.task is not None:
            self.task.cancel()
        else:
            self.writer.transport.abort()


class Transport(Endpoint):
    """The node-to-node transport of validator ``node_id``.

    ``addresses`` maps validator ids to (host, port); this node listens on its own
    entry (or ``listen``; port 0 picks a free port, see ``port``) and dials the peers
    whose ids sort above its own; at start it knocks once on those below. Received
    frames go through ``decode`` (default: the bytes themselves) to
    ``on_message(peer_id, message)`` (sync or async) or, without a handler, to
    ``receive()`` / ``async for``.
    """

    def __init__(self, node_id: str, credentials: NodeCredentials, config: ChainConfig,
                 addresses: Mapping[str, Address], *, decode: Decode | None = None,
                 on_message: Handler | None = None,
                 limits: TransportLimits | None = None, counters: Counters | None = None,
                 clock: Callable[[], int] = wall_ms, listen: Address | None = None,
                 rng: random.Random | None = None) -> None:
        self._check_self(node_id, credentials, config)
        super().__init__(node_id, (v.id for v in config.validators), decode=decode,
                         on_message=on_message, limits=limits or TransportLimits(),
                         counters=counters)
        self.credentials = credentials
        self._config = config
        self._membership = Membership(config)
        self._server_ctx, self._client_ctx = self._contexts(credentials, config)
        self._addresses: dict[str, Address] = dict(addresses)
        listen = listen or self._addresses.get(node_id)
        if listen is None:
            raise ConfigError(f"no listen address for {node_id}")
        self._listen: Address = listen
        self._clock = clock
        self._rng = rng or secrets.SystemRandom()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._conns: dict[str, _Connection] = {}
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending = 0
        self._last_log: dict[str, float] = {}

    # -- configuration -----------------------------------------------------------------------

    @staticmethod
    def _check_self(node_id: str, credentials: NodeCredentials, config: ChainConfig) -> None:
        me = config.validator(node_id)
        if me is None:
            # A node joining the chain: its ledger is behind the configuration block that
            # adds it. Validators that applied that block accept it; it follows them.
            log.info("%s is not a validator in configuration %d (yet); it connects to the "
                     "validators and follows the chain", node_id, config.sequence)
            return
        if me.cert != credentials.cert_der:
            raise ConfigError(f"the TLS certificate is not {node_id}'s certificate in the "
                              "chain configuration")

    @staticmethod
    def _contexts(credentials: NodeCredentials,
                  config: ChainConfig) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        roots = [o.ca_cert for o in config.organizations]
        return server_context(credentials, roots), client_context(credentials, roots)

    @property
    def config(self) -> ChainConfig:
        return self._config

    @property
    def port(self) -> int:
        """The port this node listens on (after ``start``)."""
        if self._port is None:
            raise RuntimeError("the transport is not started")
        return self._port

    def reconfigure(self, config: ChainConfig, *, addresses: Mapping[str, Address] | None = None,
                    credentials: NodeCredentials | None = None) -> None:
        """Switch to a new configuration in force (new trust roots, CRLs, validator set).

        Connections whose peer the new configuration no longer allows (removed, revoked,
        certificate replaced) are closed (``conn.evicted``); new peers get queues and,
        when this node dials them and knows their address, a dialer. On an invalid
        configuration (``ConfigError``) nothing changes.
        """
        credentials = credentials or self.credentials
        membership = Membership(config)
        contexts = self._contexts(credentials, config)
        me = config.validator(self.node_id)
        if me is None or me.cert != credentials.cert_der:
            log.warning("%s is not a validator with this certificate in configuration %d; "
                        "its peers will refuse it", self.node_id, config.sequence)
        self._config, self._membership, self.credentials = config, membership, credentials
        self._server_ctx, self._client_ctx = contexts
        _, removed = self._set_peers(v.id for v in config.validators)
        if addresses is not None:
            self._addresses = dict(addresses)
        for peer_id, conn in list(self._conns.items()):
            reason = "removed" if peer_id in removed else self._refusal(conn)
            if reason is not None:
                self.counters.inc("conn.evicted")
                log.warning("closing the connection to %s: %s under configuration %d",
                            peer_id, reason, config.sequence)
                conn.close(f"evicted: {reason}")
        self._sync_dialers()
        self._changed()

    def set_addresses(self, addresses: Mapping[str, Address]) -> None:
        """Replace the address book; dialers of peers whose address changed restart."""
        new = dict(addresses)
        for peer_id, task in list(self._dialers.items()):
            if self._addresses.get(peer_id) != new.get(peer_id):
                task.cancel()
                del self._dialers[peer_id]
        self._addresses = new
        self._sync_dialers()

    def _refusal(self, conn: _Connection) -> str | None:
        try:
            authorize(conn.cert_der, self._config, self._membership, self._clock(),
                      expected=conn.peer_id)
        except PeerRefused as exc:
            return exc.reason
        return None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None or self._closed:
            raise RuntimeError("a transport starts once")
        self._bind_loop()
        loop = asyncio.get_running_loop()
        host, port = self._listen
        self._server = await loop.create_server(lambda: _Accept(self), host, port,
                                                reuse_address=True)
        self._port = int(self._server.sockets[0].getsockname()[1])
        self._sync_dialers()
        log.info("%s listening for peers on %s:%d", self.node_id, host, self._port)
        # Peers that dial this node have been failing to reach it, their redial delay grown
        # up to backoff_max: ask each of them once to dial now.
        for peer_id in sorted(self._queues):
            if peer_id < self.node_id and peer_id in self._addresses:
                self._spawn(self._knock(peer_id, self._addresses[peer_id]),
                            f"p2p-knock-{peer_id}")

    async def stop(self) -> None:
        """Stop listening and dialing, close every connection, end ``receive()``."""
        if self._closed:
            return
        self._close_inbox()
        if self._server is not None:
            self._server.close()
        for task in self._dialers.values():
            task.cancel()
        self._dialers.clear()
        for conn in list(self._conns.values()):
            conn.close("stopped")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.limits.close_timeout * 2)
        self._changed()

    async def __aenter__(self) -> Transport:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.counters.inc("errors.internal")
            log.error("transport task %s failed", task.get_name(), exc_info=task.exception())

    def connected_peers(self) -> set[str]:
        return set(self._conns)

    def status(self) -> dict[str, Any]:
        """Per-peer view for the node's API and for operators."""
        peers = {}
        for peer_id in sorted(self.peers):
            conn = self._conns.get(peer_id)
            addr = self._addresses.get(peer_id)
            peers[peer_id] = {
                "connected": conn is not None,
                "direction": None if conn is None else ("out" if conn.outbound else "in"),
                "address": None if addr is None else f"{addr[0]}:{addr[1]}",
                "dials": self.node_id < peer_id,
                "queued": self.queued(peer_id),
            }
        return {"node_id": self.node_id, "port": self._port, "peers": peers,
                "counters": self.counters.snapshot()}

    def _refused(self, reason: str, message: str) -> None:
        self.counters.inc(f"refused.{reason}")
        now = time.monotonic()
        if now - self._last_log.get(reason, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._last_log[reason] = now
            log.warning("%s refused a peer connection (%s): %s", self.node_id, reason, message)
        else:
            log.debug("%s refused a peer connection (%s): %s", self.node_id, reason, message)

    # -- dialing -----------------------------------------------------------------------------

    def _sync_dialers(self) -> None:
        if self._loop is None or self._closed:
            return
        for peer_id in list(self._dialers):
            if peer_id not in self._queues or peer_id not in self._addresses:
                self._dialers.pop(peer_id).cancel()
        for peer_id in sorted(self._queues):
            if self.node_id < peer_id and peer_id in self._addresses:
                task = self._dialers.get(peer_id)
                if task is None or task.done():
                    self._dialers[peer_id] = self._spawn(self._dial_loop(peer_id),
                                                         f"p2p-dial-{peer_id}")

    async def _dial_loop(self, peer_id: str) -> None:
        wakeup = self._wakeups[peer_id] = asyncio.Event()
        try:
            await self._redial(peer_id, wakeup)
        finally:
            if self._wakeups.get(peer_id) is wakeup:
                del self._wakeups[peer_id]

    async def _redial(self, peer_id: str, wakeup: asyncio.Event) -> None:
        attempts = 0
        first = True
        while not self._closed and peer_id in self._queues:
            if not first:
                self.counters.inc("conn.reconnects")
                delay = backoff_delay(attempts, self.limits.backoff_initial,
                                      self.limits.backoff_max, self._rng)
                try:  # a knock of the peer (it just started) cuts the wait short
                    await asyncio.wait_for(wakeup.wait(), delay)
                    attempts = 0
                except TimeoutError:
                    pass
            first = False
            wakeup.clear()  # a knock from now on asks for another attempt after this one
            address = self._addresses.get(peer_id)
            if address is None:
                return
            conn = await self._dial(peer_id, address)
            if conn is None or conn.task is None:
                attempts += 1
                continue
            attempts = 0
            await asyncio.wait({conn.task})

    async def _dial(self, peer_id: str, address: Address) -> _Connection | None:
        host, port = address
        timeout = self.limits.connect_timeout
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=self._client_ctx, ssl_handshake_timeout=timeout,
                limit=_STREAM_LIMIT), timeout)
        except (OSError, TimeoutError) as exc:
            self.counters.inc("conn.dial_failures")
            if isinstance(exc, ssl.SSLCertVerificationError):
                self._refused(refusal_of(exc), f"{peer_id} at {host}:{port}: {exc}")
            else:
                log.debug("%s cannot reach %s at %s:%d: %r", self.node_id, peer_id, host, port,
                          exc)
            return None
        return await self._establish(reader, writer, expected=peer_id)

    async def _knock(self, peer_id: str, address: Address) -> None:
        """Connect to a lower peer, which refuses the connection (direction rule) and, as
        it has proved to be ``peer_id``, dials it now; wait for that refusal."""
        host, port = address
        timeout = self.limits.connect_timeout
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=self._client_ctx, ssl_handshake_timeout=timeout,
                limit=_STREAM_LIMIT), timeout)
        except (OSError, TimeoutError) as exc:
            log.debug("%s cannot knock on %s at %s:%d: %r", self.node_id, peer_id, host, port,
                      exc)
            return
        self.counters.inc("conn.knocks")
        try:
            await asyncio.wait_for(reader.read(1), self.limits.handshake_timeout)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.transport.abort()

    def _knocked(self, peer_id: str) -> None:
        """``peer_id`` (authenticated) dialed this node, which dials it: it has just started
        and has no connection with this node. Dial it now unless connected already."""
        wakeup = self._wakeups.get(peer_id)
        if wakeup is not None and peer_id not in self._conns and not wakeup.is_set():
            log.info("%s: %s knocked; dialing it now", self.node_id, peer_id)
            wakeup.set()

    # -- accepting ---------------------------------------------------------------------------

    def _accepted(self, raw: asyncio.Transport) -> None:
        if self._closed:
            raw.abort()
            return
        if self._pending >= self.limits.max_pending_handshakes:
            self._refused("busy", "too many handshakes in progress")
            raw.abort()
            return
        self._pending += 1
        self._spawn(self._accept(raw), "p2p-accept")

    async def _accept(self, raw: asyncio.Transport) -> None:
        try:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=_STREAM_LIMIT)
            protocol = asyncio.StreamReaderProtocol(reader)
            timeout = self.limits.handshake_timeout
            peer = raw.get_extra_info("peername")
            try:
                tls = await asyncio.wait_for(loop.start_tls(
                    raw, protocol, self._server_ctx, server_side=True,
                    ssl_handshake_timeout=timeout), timeout + 1.0)
            except (OSError, TimeoutError) as exc:
                raw.abort()
                self._refused(refusal_of(exc), f"TLS handshake with {peer} failed: {exc!r}")
                return
            except BaseException:
                raw.abort()
                raise
            if tls is None:
                raw.abort()
                return
            # loop.start_tls does not announce the TLS transport to the app protocol; do it
            # so the reader's flow control pauses the TLS transport, not the raw one.
            protocol.connection_made(tls)
            writer = asyncio.StreamWriter(tls, protocol, reader, loop)
            await self._establish(reader, writer, expected=None)
        finally:
            self._pending -= 1

    # -- both directions ---------------------------------------------------------------------

    async def _establish(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                         expected: str | None) -> _Connection | None:
        """Identity rule and hello; registers and runs the connection, or refuses it."""
        timeout = self.limits.handshake_timeout
        outbound = expected is not None
        where = f"{expected} (dialed)" if outbound else f"{writer.get_extra_info('peername')}"
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if not der:
                raise PeerRefused("unknown", "no peer certificate")
            if der == self.credentials.cert_der:
                raise PeerRefused("self", "the peer presented this node's own certificate")
            peer_id = authorize(der, self._config, self._membership, self._clock(),
                                expected=expected)
            if not outbound and not peer_id < self.node_id:
                self._knocked(peer_id)
                raise PeerRefused("direction", f"{self.node_id} dials {peer_id}, not the reverse")
            writer.write(frame(hello(self._config.chain_id)))
            await asyncio.wait_for(writer.drain(), timeout)
            theirs = await read_frame(reader, MAX_HELLO_BYTES, idle_timeout=timeout,
                                      body_timeout=timeout)
            check_hello(theirs, self._config.chain_id)
            # The configuration may have changed during the hello: decide under the new one.
            authorize(der, self._config, self._membership, self._clock(), expected=peer_id)
        except PeerRefused as exc:
            writer.transport.abort()
            if exc.reason == "direction":  # a knock (see _knocked): expected, not logged
                self.counters.inc("refused.direction")
            else:
                self._refused(exc.reason, f"{where}: {exc}")
            return None
        except BadHello as exc:
            writer.transport.abort()
            self._refused(exc.reason, f"{where}: {exc}")
            return None
        except FrameTooLarge as exc:
            writer.transport.abort()
            self._refused("protocol", f"{where}: hello {exc}")
            return None
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            writer.transport.abort()
            if outbound:  # usually: the peer refused our certificate after its handshake
                self.counters.inc("conn.dial_failures")
                log.debug("%s: hello with %s failed: %r", self.node_id, where, exc)
            else:
                self._refused("protocol", f"{where}: no hello: {exc!r}")
            return None
        except BaseException:
            writer.transport.abort()
            raise
        if self._closed or peer_id not in self._queues:
            writer.transport.abort()
            return None
        conn = _Connection(peer_id, der, reader, writer, outbound)
        old = self._conns.get(peer_id)
        if old is not None:
            old.close("replaced")
        self._conns[peer_id] = conn
        conn.task = self._spawn(self._run(conn), f"p2p-conn-{peer_id}")
        # Bookkeeping in a done-callback: it runs even if the task is cancelled (evicted,
        # replaced, stopped) before its first step, when no ``finally`` of _run would.
        conn.task.add_done_callback(lambda _task: self._closed_conn(conn))
        self.counters.inc("conn.connects")
        log.info("%s connected to %s (%s)", self.node_id, peer_id,
                 "outbound" if outbound else "inbound")
        self._changed()
        return conn

    async def _run(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        children = {loop.create_task(self._read_loop(conn), name=f"p2p-read-{conn.peer_id}"),
                    loop.create_task(self._write_loop(conn), name=f"p2p-write-{conn.peer_id}")}
        try:
            done, _ = await asyncio.wait(children, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is not None:
                    self.counters.inc("errors.internal")
                    log.error("connection to %s failed", conn.peer_id,
                              exc_info=task.exception())
                elif not conn.reason:
                    conn.reason = str(task.result())
        finally:
            for task in children:
                task.cancel()
            conn.writer.close()
            try:
                async with asyncio.timeout(self.limits.close_timeout):
                    await asyncio.gather(*children, return_exceptions=True)
                    with contextlib.suppress(OSError):
                        await conn.writer.wait_closed()
            except TimeoutError:
                conn.writer.transport.abort()
            except BaseException:
                conn.writer.transport.abort()
                raise

    def _closed_conn(self, conn: _Connection) -> None:
        if not conn.writer.transport.is_closing():
            conn.writer.transport.abort()
        if self._conns.get(conn.peer_id) is conn:
            del self._conns[conn.peer_id]
        self.counters.inc("conn.disconnects")
        log.info("%s disconnected from %s: %s", self.node_id, conn.peer_id,
                 conn.reason or "closed")
        self._changed()

    async def _read_loop(self, conn: _Connection) -> str:
        lim = self.limits
        while True:
            try:
                payload = await read_frame(conn.reader, lim.max_frame_bytes,
                                           idle_timeout=lim.idle_timeout,
                                           body_timeout=lim.body_timeout)
            except FrameTooLarge as exc:
                self.counters.inc("dropped.oversize")
                log.warning("%s: %s announced a %s; closing", self.node_id, conn.peer_id, exc)
                return "oversize frame"
            except TimeoutError:
                return "read timeout"
            except asyncio.IncompleteReadError:
                return "closed by peer"
            except OSError as exc:
                return f"read error: {exc!r}"
            if payload:
                await self._deliver(conn.peer_id, payload)

    async def _write_loop(self, conn: _Connection) -> str:
        lim = self.limits
        writer = conn.writer
        checked = time.monotonic()
        while True:
            queue = self._queues.get(conn.peer_id)
            if queue is None:
                return "peer removed"
            if time.monotonic() - checked >= lim.keepalive_interval:
                checked = time.monotonic()
                reason = self._refusal(conn)
                if reason is not None:  # e.g. the certificate expired while connected
                    self.counters.inc("conn.evicted")
                    return f"evicted: {reason}"
            if not queue:
                queue.wakeup.clear()
                try:
                    await asyncio.wait_for(queue.wakeup.wait(), lim.keepalive_interval)
                    continue
                except TimeoutError:
                    writer.write(KEEPALIVE)
            else:  # what is queued, up to _WRITE_BATCH bytes, in one write and one drain
                chunks: list[bytes] = []
                sent = 0
                while queue and sent < _WRITE_BATCH:
                    payload = queue.pop()
                    chunks += (header(len(payload)), payload)
                    sent += len(payload)
                writer.write(b"".join(chunks))
                self.counters.inc("frames.out", len(chunks) // 2)
                self.counters.inc("bytes.out", sent)
            try:
                async with asyncio.timeout(lim.write_timeout):
                    await writer.drain()
            except TimeoutError:
                return "write timeout"
            except OSError as exc:
                return f"write error: {exc!r}"
