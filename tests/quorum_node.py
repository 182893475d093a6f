"""A one-validator quorum node in process for the JSON-RPC adapter tests: a real
``QuorumChain`` over a ``LedgerStore``, a ``LanePool``, an ``EvmView`` and a ``HeadFeed``.

Block production is the one stand-in: ``submit`` admits a raw transaction
(``admit_eth`` + the pool) and at once prepares and commits a block of the pool's ready
transactions with solo consensus, then publishes the height (the node's batching timer
and replication are not what these tests are about).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from consortia.consensus.core import BatchReady, Commit
from consortia.consensus.solo import Solo
from consortia.execution.evm import EthTx
from consortia.ledger.store import LedgerStore
from consortia.node.evmview import EvmView
from consortia.node.heads import HeadFeed
from consortia.node.quorum import QuorumChain
from consortia.txpool.ethadmission import EthEntry, admit_eth
from consortia.txpool.lanes import LanePool
from tests.unit.conftest import NOW_MS, FixedBatchSupport, World


class QuorumNode:
    """A one-validator quorum node in process: chain, pool, view and head feed."""

    def __init__(self, path: Path, world: World) -> None:
        self.store = LedgerStore(path)
        self.chain = QuorumChain(self.store, world.genesis, world.validator.key)
        self.support = FixedBatchSupport(self.chain)
        self.solo = Solo(self.support, "validator0")
        self.pool = LanePool(lambda a: self.chain.engine.nonce(self.chain.state_root, a),
                             max_txs=1_000, max_bytes=10_000_000)
        self.view = EvmView(self.store, self.chain.engine, lambda: self.chain.evm,
                            pending_nonce=self.pool.next_nonce)
        self.heads = HeadFeed(self.store.height)
        self.time = NOW_MS
        self._lock = threading.Lock()

    async def submit(self, raw: bytes) -> bytes:
        entry = admit_eth(raw, self.chain.config)
        self.pool.add(entry)
        height = await asyncio.to_thread(self._mine)
        if height > self.heads.latest:
            self.heads.publish(height)
        return entry.id

    def _mine(self) -> int:
        with self._lock:
            batch = self.pool.take_batch(1_000, 10_000_000)
            if batch:
                self.time += 1000
                self.support.batch = batch  # type: ignore[assignment]
                (action,) = self.solo.step(BatchReady(self.time))
                assert isinstance(action, Commit) and action.prepared is not None
                self.chain.commit(action.block, action.prepared)
                self.pool.done(t.id for t in batch)
            return self.store.height

    def pending(self, tx_hash: bytes) -> EthTx | None:
        found = self.pool.get(tx_hash)
        return found.eth if isinstance(found, EthEntry) else None
