"""The node's transaction path in one asyncio loop: admit → pool → order → commit.

Admission runs on a small thread pool (signature verification releases the
GIL); ordering and the SQLite commit run on one dedicated thread, so the API
keeps admitting while a block is written. A submitter asking to ``wait`` gets a
future that resolves once its block is durably committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from consortia import __version__
from consortia.consensus.core import (
    BatchReady,
    Broadcast,
    Commit,
    Core,
    Event,
    Persist,
    Send,
    WakeAt,
)
from consortia.consensus.solo import Solo
from consortia.execution.evm import Rejected
from consortia.identity.keystore import FileKeystore
from consortia.ledger.genesis import load_genesis
from consortia.ledger.proof import build_proof
from consortia.ledger.store import LedgerStore
from consortia.node.chain import Chain, check_validator_identity
from consortia.node.metrics import NodeMetrics
from consortia.node.parts import admission_for, attach_privacy, open_chain, pool_for
from consortia.node.quorum import QuorumChain
from consortia.node.receipts import Receipt, ReceiptWaiters
from consortia.node.replica import ReplicaNodeSupport
from consortia.node.replication import Replication
from consortia.node.settings import NodeSettings
from consortia.node.support import NodeSupport
from consortia.txpool.admission import Admission
from consortia.txpool.ethadmission import Entry, EthEntry, already_committed
from consortia.txpool.quorum_pool import QuorumPool
from consortia.types.block import Result
from consortia.types.config import ConsensusKind
from consortia.types.errors import (
    ConsortiaError,
    NotFound,
    Unavailable,
)

log = logging.getLogger("consortia.node")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class HeightWatch:
    """Wakes readers long-polling for a block above some height (``GET /v1/sync/blocks``)
    when one commits. Event-loop thread only."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def bump(self) -> None:
        """A block committed: wake every waiter (each re-checks the height)."""
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_above(self, store: LedgerStore, height: int, timeout: float) -> None:
        """Return once ``store`` holds a block above ``height`` or ``timeout`` seconds
        passed, whichever comes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while store.height <= height:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if self._event is None:
                self._event = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)


@dataclass(frozen=True)
class _Committed:
    """A block this step stored, and what the event loop must settle for it."""

    height: int
    batch: Sequence[Entry]
    results: list[Result]
    lost: list[Entry]
    """This node's own proposal for the height, when another block won it."""
    reconfigured: bool
    rejected: tuple[tuple[Any, Rejected], ...] = ()
    """Ethereum transactions this node's proposal left out, and why (quorum chains)."""


class Node:
    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.node_id = settings.node.id
        self.metrics = NodeMetrics()
        self.genesis = load_genesis(settings.resolve(settings.node.genesis))
        ident = FileKeystore(settings.resolve(settings.identity.keystore)).load(
            settings.identity.name, settings.passphrase())
        multi = self.genesis.config.consensus is not ConsensusKind.SOLO
        check_validator_identity(self.genesis.config, self.node_id, ident.cert_der,
                                 joining=multi)
        self.cert_der = ident.cert_der
        data_dir = settings.resolve(settings.node.data_dir)
        self.store = LedgerStore(data_dir / "ledger.sqlite3")
        self.chain = open_chain(self.store, self.genesis, ident.key)
        check_validator_identity(self.chain.config, self.node_id, ident.cert_der,
                                 joining=multi)
        self.admission = admission_for(
            self.chain, Admission(self.chain.suite, self.chain.config, now_ms))
        self.pool = pool_for(self.chain, settings)
        self.replication: Replication | None = None
        if self.chain.config.consensus is ConsensusKind.SOLO:
            self.support: NodeSupport = NodeSupport(self.chain, self.pool)
            self.core: Core = Solo(self.support, self.node_id)
        else:
            replica = ReplicaNodeSupport(self.chain, self.pool, self.admission)
            self.support = replica
            self.replication = Replication(settings, replica, self.chain.config,
                                           self.metrics.registry)
            self.core = self.replication.core
        self._progress: asyncio.Event | None = None
        self._verify = ThreadPoolExecutor(settings.pool.verify_threads,
                                          thread_name_prefix="verify")
        self._commit = ThreadPoolExecutor(1, thread_name_prefix="commit")
        self._receipts = ReceiptWaiters()
        self._arrived: asyncio.Event | None = None
        self._first_arrival: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.started_ms = now_ms()
        self.failed = False
        self.heights = HeightWatch()
        self.metrics.height.set(self.store.height)
        self.privacy = attach_privacy(self.chain, settings)
        """The member's transaction manager (quorum chains with ``[privacy]``)."""
        self.commit_listeners: list[Callable[[int], None]] = []
        """Called on the event-loop thread with each committed height, in order (the
        Ethereum JSON-RPC's head feed of a quorum node)."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._progress = asyncio.Event()
        self._task = asyncio.create_task(self._order_loop(), name="order-loop")
        if self.replication is not None:
            await self.replication.start(self._run_step, self._admit_gossip)
        log.info("node %s serving chain %s at height %d", self.node_id, self.chain.chain_id,
                 self.store.height)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.replication is not None:
            await self.replication.stop()
        self._verify.shutdown(wait=True)
        self._commit.shutdown(wait=True)
        if self.privacy is not None:
            self.privacy.close()
        self.store.close()

    # -- submission --------------------------------------------------------------------------

    async def submit(self, raws: Sequence[bytes], *,
                     gossip: bool = True) -> list[Entry | ConsortiaError]:
        """Admit each raw envelope, or say why not; admitted ones are queued in order and,
        on a multi-validator chain, offered to the other validators (``gossip``)."""
        if self.failed:
            raise Unavailable("this node can no longer commit blocks and is stopping")
        loop = asyncio.get_running_loop()
        chunk = max(1, -(-len(raws) // self.settings.pool.verify_threads))
        parts = [raws[i:i + chunk] for i in range(0, len(raws), chunk)]
        checked = await asyncio.gather(*[
            loop.run_in_executor(self._verify, self._check_many, part) for part in parts])
        results: list[Entry | ConsortiaError] = [r for part in checked for r in part]
        fresh = [r for r in results if not isinstance(r, ConsortiaError)]
        known = self.store.known_txids([t.id for t in fresh]) if fresh else set()
        for i, r in enumerate(results):
            if isinstance(r, ConsortiaError):
                continue
            try:
                if r.id in known:
                    raise already_committed(r)
                self.pool.add(r)
            except ConsortiaError as exc:
                results[i] = exc
        for r in results:
            if isinstance(r, ConsortiaError):
                self.metrics.tx_rejected.labels(r.code).inc()
        admitted = len(results) - sum(isinstance(r, ConsortiaError) for r in results)
        if admitted and gossip and self.replication is not None:
            self.replication.gossip([r.raw for r in results
                                     if not isinstance(r, ConsortiaError)])
        if admitted:
            self.metrics.tx_admitted.inc(admitted)
            self.metrics.pool_size.set(len(self.pool))
            if self._first_arrival is None:
                self._first_arrival = time.monotonic()
            assert self._arrived is not None
            self._arrived.set()
        return results

    def _check_many(self, raws: Sequence[bytes]) -> list[Entry | ConsortiaError]:
        out: list[Entry | ConsortiaError] = []
        for raw in raws:
            try:
                out.append(self.admission.check(raw))
            except ConsortiaError as exc:
                out.append(exc)
            except Exception as exc:
                # A bug met on one client's input must not fail the other items of its
                # batch: report it loudly, answer that item 500, keep serving.
                log.exception("unexpected error while admitting a transaction")
                out.append(ConsortiaError(f"internal error while checking this transaction "
                                          f"({exc.__class__.__name__})"))
        return out

    async def wait_for(self, txids: Sequence[bytes], timeout: float) -> list[Receipt]:
        """Receipts of ``txids`` once committed, or as they stand when ``timeout`` expires."""
        receipts = await self._receipts.wait(txids, timeout, self._stored, self.receipt)
        if self.failed:
            raise Unavailable("the node failed and is stopping; resubmit after it restarts")
        return receipts

    def _stored(self, txid: bytes) -> Receipt | None:
        row = self.store.tx(txid) if not self.pool.contains(txid) else None
        return None if row is None else Receipt.of(row)

    def receipt(self, txid: bytes) -> Receipt:
        row = self.store.tx(txid)
        if row is not None:
            return Receipt.of(row)
        if self.pool.contains(txid):
            return Receipt(txid, "pending")
        raise NotFound(f"transaction {txid.hex()} is unknown to this node")

    def proof(self, txid: bytes) -> bytes:
        return build_proof(self.store, self.chain.suite, self.genesis.hash, txid)

    # -- ordering ----------------------------------------------------------------------------

    async def _order_loop(self) -> None:
        assert self._arrived is not None and self._progress is not None
        while True:
            if len(self.pool) == 0:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            # Cut when a block is full or the oldest waiting transaction has waited the
            # batch timeout. Leftovers of a cut (a configuration transaction goes alone, a
            # byte limit was reached) keep their arrival time, so they are cut next at once.
            limits = self.chain.config.limits
            if self._first_arrival is None:
                self._first_arrival = time.monotonic()
            deadline = self._first_arrival + limits.batch_timeout_ms / 1000
            while len(self.pool) < limits.max_block_txs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            self._progress.clear()
            if not await self._run_step(BatchReady(now_ms())) and len(self.pool):
                # Nothing was ordered: this validator does not lead, or its block is still
                # being agreed. Offer the batch again once a block commits or a batch
                # timeout has passed, never in a busy loop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(),
                                           limits.batch_timeout_ms / 1000)
                self._first_arrival = None
            if len(self.pool) == 0:
                self._first_arrival = None

    async def _run_step(self, event: Event) -> int:
        """Run ``event`` through the core on the commit thread (steps are serialized there)
        and settle what committed; returns how many blocks committed."""
        loop = asyncio.get_running_loop()
        try:
            committed = await loop.run_in_executor(self._commit, self._step, event)
        except Exception:
            # A block that cannot be stored (disk full, I/O error) or a broken consensus
            # invariant leaves nothing safe to do: refuse new work and stop the process, so
            # a supervisor restarts it and the start-up chain check runs. Nothing
            # uncommitted was acknowledged.
            log.critical("failed to step consensus or commit a block; the node stops",
                         exc_info=True)
            self._fail()
            return 0
        reconfigured = False
        for c in committed:
            self.pool.discard([t.id for t in c.batch])
            if c.lost:
                self.pool.requeue(c.lost)
            if isinstance(self.pool, QuorumPool):
                self._settle_lanes(self.pool, c)
            self._notify(c.height, c.batch, c.results)
            reconfigured = reconfigured or c.reconfigured
            for listener in self.commit_listeners:
                listener(c.height)
        if reconfigured and self.replication is not None:
            self.replication.reconfigure(self.chain.config)
        if committed:
            self.heights.bump()
            self.metrics.pool_size.set(len(self.pool))
            assert self._progress is not None
            self._progress.set()
        return len(committed)

    def _settle_lanes(self, pool: QuorumPool, c: _Committed) -> None:
        """After a quorum block: drop what its execution left out (their waiters learn
        why), then re-read the nonces of every sender the block touched."""
        if c.rejected:
            pool.drop([e.id for e, _ in c.rejected])
            for e, r in c.rejected:
                self._receipts.dropped(e.id, r.code)
                self.metrics.tx_rejected.labels(r.code).inc()
        senders = {e.sender for e in c.batch if isinstance(e, EthEntry)}
        senders.update(e.sender for e, _ in c.rejected)
        if senders:
            pool.settle(senders)

    def _fail(self) -> None:
        self.failed = True
        self._receipts.fail("the node failed before committing this transaction; it stops "
                            "now — resubmit after it restarts")
        os.kill(os.getpid(), signal.SIGTERM)

    async def _admit_gossip(self, envelopes: list[bytes]) -> None:
        """Transactions another validator admitted: check them here too, without gossiping
        them on (duplicates of ones already known are simply refused)."""
        if not self.failed:
            await self.submit(envelopes, gossip=False)

    def _step(self, event: Event) -> list[_Committed]:
        """Run the consensus core on ``event`` and carry out its actions in order (commit
        thread): persist before the messages that follow, then send, commit, set timers."""
        t0 = time.perf_counter()
        committed: list[_Committed] = []
        rep = self.replication
        for action in self.core.step(event):
            if isinstance(action, Commit):
                committed.append(self._store(action, t0))
            elif rep is None:
                raise ConsortiaError(f"solo produced an unexpected action {action!r}")
            elif isinstance(action, Persist):
                rep.persist(action.state)
            elif isinstance(action, Send):
                rep.send(action.to, action.message)
            elif isinstance(action, Broadcast):
                rep.broadcast(action.message)
            elif isinstance(action, WakeAt):
                rep.wake_at(action.at_ms)
        return committed

    def _store(self, action: Commit, t0: float) -> _Committed:
        if action.prepared is None:
            raise ConsortiaError("a consensus core committed a block it did not prepare")
        block, prepared = action.block, action.prepared
        new_config = self.chain.commit(block, prepared)
        if new_config is not None:
            self.admission.reconfigure(new_config)
        batch, results = Chain.batch_of(prepared), Chain.results_of(prepared)
        rejected = (QuorumChain.rejected_of(prepared) if isinstance(self.chain, QuorumChain)
                    else ())
        lost: list[Entry] = []
        if isinstance(self.support, ReplicaNodeSupport):
            lost = self.support.settle(block.header.height, prepared.hash)
        m = self.metrics
        m.block_seconds.observe(time.perf_counter() - t0)
        m.block_txs.observe(len(batch))
        m.blocks.inc()
        m.height.set(block.header.height)
        invalid = sum(1 for r in results if r.code)
        m.tx_committed.labels("valid").inc(len(batch) - invalid)
        if invalid:
            m.tx_committed.labels("invalid").inc(invalid)
        return _Committed(block.header.height, batch, results, lost, new_config is not None,
                          rejected)

    def _notify(self, height: int, batch: Sequence[Entry], results: list[Result]) -> None:
        self._receipts.committed(height, batch, results)

    # -- views -------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/healthz``: 503 once the node failed (it is stopping), else 200."""
        if self.failed:
            return 503, {"status": "failed", "height": self.store.height}
        return 200, {"status": "ok", "height": self.store.height}

    def info(self) -> dict[str, Any]:
        cfg = self.chain.config
        member = self.chain.membership.identify(self.cert_der)
        return {
            "chain_id": cfg.chain_id,
            "profile": str(cfg.profile),
            "consensus": str(cfg.consensus),
            "height": self.store.height,
            "tx_count": self.store.tx_total,
            "genesis_hash": self.genesis.hash.hex(),
            "latest_hash": self.chain.last_hash.hex(),
            "config_height": self.chain.config_height,
            "validators": [{"id": v.id, "org_id": v.org_id} for v in cfg.validators],
            "node": {"id": self.node_id, "org_id": member.org_id, "version": __version__,
                     "role": str(member.role), "started_ms": self.started_ms},
            "pool": {"transactions": len(self.pool), "bytes": self.pool.size_bytes,
                     "in_flight": self.pool.inflight},
            "config": cfg.summary(),
            "consensus_status": (self.replication.status() if self.replication is not None
                                 else self.core.status()),
        }
