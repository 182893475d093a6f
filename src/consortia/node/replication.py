"""Running a multi-validator consensus core (raft, pbft) in a node process.

The core steps on the node's single commit thread, like solo. This module carries out
what only multi-validator protocols ask for: ``Send``/``Broadcast`` over the mutual-TLS
transport, ``Persist`` to a file that is fsynced before the step's later messages leave
(a vote is remembered before it is sent), ``WakeAt`` as an event-loop timer that feeds
a ``Tick`` back. It also gossips admitted transactions to the other validators, so the
one that proposes next has them.

Frames on the transport start with one byte: ``C`` a consensus message of the chain's
protocol, ``T`` a msgpack array of transaction envelopes.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack

from consortia.consensus.core import Core, Event, Receive, Tick
from consortia.consensus.pbft import Params as PbftParams
from consortia.consensus.raft import RaftTimings
from consortia.node.bodies import split_bin_array
from consortia.node.replica import ReplicaNodeSupport
from consortia.node.settings import NodeSettings
from consortia.p2p import NodeCredentials, Transport
from consortia.p2p.counters import Counters
from consortia.types.config import ChainConfig, ConsensusKind, Profile
from consortia.types.errors import ConfigError, Malformed

log = logging.getLogger("consortia.node.replication")

CONSENSUS = b"C"
TXS = b"T"
_MAX_GOSSIP = 10_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


QUORUM_TIMEOUT_MS = 2_000
"""The view-change (pbft) and election (raft) timeout of quorum chains unless
``[consensus] timeout_ms`` says otherwise. The protocols' defaults (300 ms) assume blocks
that validate in a fraction of that; an EVM block of 30 M gas (about 580 ERC-20
transfers) needs about 0.9 s of a whole core (656 transfers/s, ``bench/evm_engine.py``),
more on validators sharing two cores, and every validator re-executes it before voting.
With 300 ms (doubling to 1.2 s) the view changed before any full block could commit —
a livelock found by ``bench/evm.py --launch consortia-4``. GoQuorum's QBFT waits 10 s by default."""


def timeouts(config: ChainConfig, timeout_ms: int | None) -> dict[str, Any]:
    """The protocol tuning for ``make_core``: ``timeout_ms`` (the node's setting), else
    :data:`QUORUM_TIMEOUT_MS` on quorum chains, else the protocol's own defaults."""
    if timeout_ms is None and config.profile is Profile.QUORUM:
        timeout_ms = QUORUM_TIMEOUT_MS
    if timeout_ms is None:
        return {}
    if config.consensus is ConsensusKind.PBFT:
        return {"params": PbftParams(view_timeout_ms=timeout_ms, max_backoff=3)}
    return {"timings": RaftTimings(election_ms=timeout_ms,
                                   heartbeat_ms=max(50, timeout_ms // 6))}


class Replication:
    """The consensus core of a raft or pbft validator, with its transport and timers."""

    def __init__(self, settings: NodeSettings, support: ReplicaNodeSupport,
                 config: ChainConfig, counters_registry: Any) -> None:
        if settings.p2p is None:
            raise ConfigError(f"a {config.consensus} chain needs a [p2p] section in the node "
                              "configuration")
        self.node_id = settings.node.id
        self.protocol: ModuleType = importlib.import_module(
            f"consortia.consensus.{config.consensus}")
        self.support = support
        self.state_path = settings.resolve(settings.node.data_dir) / "consensus.state"
        durable = self.state_path.read_bytes() if self.state_path.exists() else None
        rng = random.Random(os.urandom(16))  # noqa: S311 - election timeouts, not secrets
        retain = settings.consensus.retain_blocks
        tuning: dict[str, Any] = {} if retain is None else {"retain_blocks": retain}
        tuning.update(timeouts(config, settings.consensus.timeout_ms))
        self.core: Core = self.protocol.make_core(self.node_id, support, rng, durable, **tuning)
        ident = settings.identity
        self.credentials = NodeCredentials.from_keystore(
            settings.resolve(ident.keystore), ident.name, settings.passphrase())
        self._p2p = settings.p2p
        self._addresses = self._address_book(config)
        missing = {v.id for v in config.validators} - set(self._addresses)
        if missing:
            raise ConfigError(f"no address for {', '.join(sorted(missing))}: neither the chain "
                              "configuration nor [p2p] peers names one")
        self._config = config
        self._counters = Counters(counters_registry)
        self.transport: Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._ticks: set[asyncio.Future[Any]] = set()
        self._step: Callable[[Event], Any] | None = None
        self._gossip: Callable[[list[bytes]], Any] | None = None

    # -- lifecycle (event loop) ------------------------------------------------------------

    async def start(self, step: Callable[[Event], Any],
                    gossip: Callable[[list[bytes]], Any]) -> None:
        """``step`` runs an event through the core (async, serialized by the node);
        ``gossip`` admits transactions received from a peer."""
        self._loop = asyncio.get_running_loop()
        self._step, self._gossip = step, gossip
        self.transport = Transport(self.node_id, self.credentials, self._config,
                                   self._addresses, decode=self._decode,
                                   on_message=self._on_message, counters=self._counters)
        await self.transport.start()
        await step(Tick(_now_ms()))

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            await self.transport.stop()

    def _address_book(self, config: ChainConfig) -> dict[str, tuple[str, int]]:
        """Where each validator listens: its endpoint in the configuration, unless this
        node's ``[p2p] peers`` says otherwise; this node's own listening address."""
        book = {v.id: _address(v.endpoint) for v in config.validators if v.endpoint}
        book.update({k: _address(v) for k, v in self._p2p.peers.items()})
        book[self.node_id] = (self._p2p.host, self._p2p.port)
        return book

    def reconfigure(self, config: ChainConfig) -> None:
        """Event-loop thread: a configuration block changed who may connect (and where the
        validators it added listen)."""
        self._config = config
        self._addresses = self._address_book(config)
        missing = {v.id for v in config.validators} - set(self._addresses)
        if missing:
            log.warning("no address for validator(s) %s: they must dial this node",
                        ", ".join(sorted(missing)))
        if self.transport is not None:
            self.transport.reconfigure(config, addresses=self._addresses)

    # -- inbound (event loop) ----------------------------------------------------------------

    def _decode(self, payload: bytes) -> tuple[bytes, Any]:
        kind, body = payload[:1], payload[1:]
        if kind == CONSENSUS:
            return kind, self.protocol.decode_message(body)
        if kind == TXS:
            return kind, split_bin_array(body, _MAX_GOSSIP)
        raise Malformed(f"unknown frame kind {kind!r}")

    async def _on_message(self, peer: str, decoded: tuple[bytes, Any]) -> None:
        kind, message = decoded
        assert self._step is not None and self._gossip is not None
        if kind == CONSENSUS:
            await self._step(Receive(peer, message))
        else:
            await self._gossip(message)

    def _wake(self) -> None:
        self._timer, self._timer_at = None, None
        assert self._step is not None
        task = asyncio.ensure_future(self._step(Tick(_now_ms())))
        self._ticks.add(task)
        task.add_done_callback(self._ticks.discard)

    def _schedule(self, at_ms: int) -> None:
        if self._timer_at is not None and self._timer_at <= at_ms:
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = at_ms
        self._timer = self._loop.call_later(max(0.0, (at_ms - _now_ms()) / 1000), self._wake)

    # -- outbound (commit thread) --------------------------------------------------------------

    def persist(self, state: bytes) -> None:
        _fsync_write(self.state_path, state)

    def send(self, peer: str, message: Any) -> None:
        assert self.transport is not None
        self.transport.send(peer, CONSENSUS + self.protocol.encode_message(message))

    def broadcast(self, message: Any) -> None:
        assert self.transport is not None
        self.transport.broadcast(CONSENSUS + self.protocol.encode_message(message))

    def wake_at(self, at_ms: int) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._schedule, at_ms)

    def gossip(self, envelopes: Sequence[bytes]) -> None:
        """Event-loop thread: offer freshly admitted transactions to every other validator."""
        if self.transport is not None and envelopes:
            for i in range(0, len(envelopes), _MAX_GOSSIP):
                self.transport.broadcast(TXS + msgpack.packb(list(envelopes[i:i + _MAX_GOSSIP]),
                                                            use_bin_type=True))

    def status(self) -> dict[str, Any]:
        out = dict(self.core.status())
        if self.transport is not None:
            out["peers_connected"] = sorted(self.transport.connected_peers())
        return out
