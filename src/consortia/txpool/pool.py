"""The bounded transaction pool and the batch cutter."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Protocol

from consortia.types.errors import Duplicate, PoolFull
from consortia.types.tx import Tx


class TxPool:
    """FIFO of admitted transactions, bounded in count and bytes.

    A transaction stays known to the pool (``contains``) from ``add`` until the
    block that carries it is committed (``done``), so a duplicate is refused in
    that window too; after it the store's unique index refuses it. The API thread adds
    while the commit thread takes batches, so mutations hold a lock.
    """

    def __init__(self, max_txs: int, max_bytes: int) -> None:
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._queue: OrderedDict[bytes, Tx] = OrderedDict()
        self._inflight: set[bytes] = set()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def contains(self, txid: bytes) -> bool:
        return txid in self._queue or txid in self._inflight

    def add(self, tx: Tx) -> None:
        with self._lock:
            self._add(tx)

    def _add(self, tx: Tx) -> None:
        if self.contains(tx.id):
            raise Duplicate(f"transaction {tx.id.hex()} is already pending")
        if len(self._queue) >= self.max_txs or self._bytes + len(tx.raw) > self.max_bytes:
            raise PoolFull("the transaction pool is full; retry later")
        self._queue[tx.id] = tx
        self._bytes += len(tx.raw)

    def take_batch(self, max_txs: int, max_bytes: int) -> list[Tx]:
        """Cut the next batch: up to the limits, and a configuration transaction alone."""
        with self._lock:
            return self._take_batch(max_txs, max_bytes)

    def _take_batch(self, max_txs: int, max_bytes: int) -> list[Tx]:
        batch: list[Tx] = []
        size = 0
        while self._queue and len(batch) < max_txs:
            txid, tx = next(iter(self._queue.items()))
            if tx.payload.type.is_config and batch:
                break
            if batch and size + len(tx.raw) > max_bytes:
                break
            del self._queue[txid]
            self._bytes -= len(tx.raw)
            self._inflight.add(txid)
            batch.append(tx)
            size += len(tx.raw)
            if tx.payload.type.is_config:
                break
        return batch

    def get(self, txid: bytes) -> Tx | None:
        return self._queue.get(txid)

    def discard(self, txids: list[bytes]) -> None:
        """Forget transactions committed in a block this node did not build."""
        with self._lock:
            for txid in txids:
                tx = self._queue.pop(txid, None)
                if tx is not None:
                    self._bytes -= len(tx.raw)
                self._inflight.discard(txid)

    def requeue(self, txs: list[Tx]) -> None:
        """Put back in-flight transactions of a proposal that lost (e.g. a leader change)."""
        with self._lock:
            for tx in txs:
                if tx.id in self._inflight:
                    self._inflight.discard(tx.id)
                    self._queue[tx.id] = tx
                    self._queue.move_to_end(tx.id, last=False)
                    self._bytes += len(tx.raw)

    def done(self, txids: list[bytes]) -> None:
        with self._lock:
            self._inflight.difference_update(txids)


class Pool(Protocol):
    """What the node and its consensus support need of a pool: ``TxPool``, or a quorum
    node's ``QuorumPool`` (whose entries may also be raw Ethereum transactions)."""

    def __len__(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def inflight(self) -> int: ...
    def contains(self, txid: bytes) -> bool: ...
    def add(self, tx: Any) -> None: ...
    def take_batch(self, max_txs: int, max_bytes: int) -> list[Any]: ...
    def get(self, txid: bytes) -> Any: ...
    def discard(self, txids: list[bytes]) -> None: ...
    def requeue(self, txs: list[Any]) -> None: ...
    def done(self, txids: list[bytes]) -> None: ...
