"""The pool of a quorum node: configuration envelopes and Ethereum transactions (ADR 0026).

A quorum block is either one configuration transaction or Ethereum transactions, never
both (``QuorumChain.prepare``). So the pool is two pools behind the ``TxPool`` interface
the node, its consensus support and its replicas already use:

- a FIFO ``TxPool`` for the rare configuration envelopes, each cut alone and first (a
  membership or binding change should not wait behind a stream of transfers);
- a ``LanePool`` for Ethereum transactions, cut in nonce order without gaps.

Bounds: the pool's ``max_txs``/``max_bytes`` apply to the lanes; the envelope queue holds at
most 64 (configuration changes are few and each takes a block of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from consortia.txpool.ethadmission import Entry, EthEntry
from consortia.txpool.lanes import LanePool, LaneTx
from consortia.txpool.pool import TxPool
from consortia.types.tx import Tx

MAX_CONFIG_TXS = 64
CONFIG_BYTES = 16 * 1024 * 1024


class QuorumPool:
    """Configuration envelopes first, each alone; then a batch of Ethereum transactions."""

    def __init__(self, nonce_of: Callable[[bytes], int], *, max_txs: int,
                 max_bytes: int, gas_limit: Callable[[], int | None] = lambda: None) -> None:
        self.gas_limit = gas_limit
        """The block gas limit in force (the chain's configuration may change it)."""
        self.configs = TxPool(MAX_CONFIG_TXS, CONFIG_BYTES)
        self.lanes = LanePool(nonce_of, max_txs=max_txs, max_bytes=max_bytes)

    def __len__(self) -> int:
        return len(self.configs) + len(self.lanes)

    @property
    def size_bytes(self) -> int:
        return self.configs.size_bytes + self.lanes.size_bytes

    @property
    def inflight(self) -> int:
        return self.configs.inflight + self.lanes.inflight

    def contains(self, txid: bytes) -> bool:
        return self.lanes.contains(txid) or self.configs.contains(txid)

    def get(self, txid: bytes) -> Entry | None:
        tx = self.lanes.get(txid)
        return cast(EthEntry, tx) if tx is not None else self.configs.get(txid)

    def eth(self, txid: bytes) -> EthEntry | None:
        """A held Ethereum transaction (``eth_getTransactionByHash`` of a pending one)."""
        return cast(EthEntry | None, self.lanes.get(txid))

    def next_nonce(self, sender: bytes) -> int:
        return self.lanes.next_nonce(sender)

    def add(self, entry: Entry) -> None:
        if isinstance(entry, Tx):
            self.configs.add(entry)
        else:
            self.lanes.add(entry)

    def take_batch(self, max_txs: int, max_bytes: int) -> list[Entry]:
        config = self.configs.take_batch(1, CONFIG_BYTES)
        if config:
            return list(config)
        return [cast(EthEntry, t) for t in self.lanes.take_batch(max_txs, max_bytes,
                                                                 self.gas_limit())]

    def requeue(self, entries: list[Entry]) -> None:
        self.configs.requeue([e for e in entries if isinstance(e, Tx)])
        self.lanes.requeue([cast(LaneTx, e) for e in entries if isinstance(e, EthEntry)])

    def discard(self, txids: list[bytes]) -> None:
        """Forget transactions a committed block carried (their nonces are consumed)."""
        self.configs.discard(txids)
        self.lanes.discard(txids)

    def done(self, txids: list[bytes]) -> None:
        self.configs.done(txids)
        self.lanes.done(txids)

    def drop(self, txids: Iterable[bytes]) -> None:
        """Forget Ethereum transactions execution left out (their nonces are not used)."""
        self.lanes.drop(txids)

    def settle(self, senders: Iterable[bytes]) -> list[bytes]:
        """After a block: re-read the senders' committed nonces (``LanePool.settle``)."""
        return self.lanes.settle(senders)
