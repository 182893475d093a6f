"""The pool of account-nonce transactions (the quorum profile's Ethereum transactions).

An Ethereum account's transactions execute in nonce order and only without gaps, and
clients send them concurrently: nonce 7 may reach the node before nonce 6. A FIFO pool
(``TxPool``) would put 7 in a block where it fails, so this pool keeps one *lane* per
sender, as geth's pending/queued split does:

- a transaction whose nonce is the sender's next one is **ready** and joins the ready
  queue in arrival order, followed at once by any waiting successors it unblocks;
- one with a higher nonce **waits** (at most ``max_ahead`` beyond the next nonce, and at
  most ``max_waiting_per_sender`` of them) until its predecessor arrives;
- a nonce below the sender's next one, or a second transaction for a nonce already held,
  is refused with the message Ethereum clients know.

Batches are cut from the ready queue only, so a batch never holds a gap, and a sender's
transactions appear in it in nonce order. The next nonce of a sender is the account's
nonce in the committed state (``nonce_of``) advanced past the transactions the pool holds
or has handed to a proposal; ``settle`` re-reads it for the senders of a committed block.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from consortia.types.errors import ConsortiaError, Duplicate, PoolFull


class LaneTx(Protocol):
    """What the pool needs of a transaction."""

    @property
    def id(self) -> bytes: ...
    @property
    def raw(self) -> bytes: ...
    @property
    def sender(self) -> bytes: ...
    @property
    def nonce(self) -> int: ...
    @property
    def gas(self) -> int: ...


class NonceRefused(ConsortiaError):
    """A nonce this pool cannot take; ``code`` names which rule (the RPC layer maps it)."""

    status = 422
    code = "nonce_too_low"


@dataclass
class _Lane:
    next_nonce: int
    """The nonce the sender's next ready transaction must carry."""
    held: dict[int, bytes] = field(default_factory=dict)
    """Nonce → id of every transaction of the sender the pool holds or handed out."""
    waiting: dict[int, LaneTx] = field(default_factory=dict)


class LanePool:
    """Bounded in count and bytes; thread safe (the API adds while the commit thread takes)."""

    def __init__(self, nonce_of: Callable[[bytes], int], *, max_txs: int, max_bytes: int,
                 max_ahead: int = 64, max_waiting_per_sender: int = 64) -> None:
        self._nonce_of = nonce_of
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_ahead = max_ahead
        self.max_waiting_per_sender = max_waiting_per_sender
        self._ready: OrderedDict[bytes, LaneTx] = OrderedDict()
        self._all: dict[bytes, LaneTx] = {}
        """Every held transaction (ready, waiting or in flight) by id."""
        self._inflight: set[bytes] = set()
        self._lanes: dict[bytes, _Lane] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    # -- views ------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Transactions waiting for a block (ready or waiting for a predecessor)."""
        return len(self._all) - len(self._inflight)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def ready(self) -> int:
        return len(self._ready)

    def contains(self, txid: bytes) -> bool:
        return txid in self._all

    def get(self, txid: bytes) -> LaneTx | None:
        return self._all.get(txid)

    def next_nonce(self, sender: bytes) -> int:
        """The nonce the sender's next transaction should carry (``eth_getTransactionCount``
        at ``pending``): past every transaction of its lane without a gap."""
        with self._lock:
            lane = self._lanes.get(sender)
            return self._nonce_of(sender) if lane is None else self._frontier(lane)

    # -- changes ----------------------------------------------------------------------------

    def add(self, tx: LaneTx) -> None:
        with self._lock:
            if tx.id in self._all:
                raise Duplicate("already known")
            if (len(self._all) - len(self._inflight) >= self.max_txs
                    or self._bytes + len(tx.raw) > self.max_bytes):
                raise PoolFull("txpool is full")
            lane = self._lane(tx.sender)
            if tx.nonce < lane.next_nonce and tx.nonce not in lane.held:
                raise NonceRefused(f"nonce too low: next nonce {lane.next_nonce}, "
                                   f"tx nonce {tx.nonce}")
            if tx.nonce in lane.held:
                raise NonceRefused(f"a transaction with nonce {tx.nonce} from this account is "
                                   "already pending (replacement is not supported)",
                                   code="nonce_taken")
            frontier = self._frontier(lane)
            if tx.nonce > frontier:
                if tx.nonce - frontier > self.max_ahead:
                    raise NonceRefused(f"nonce too high: next nonce {frontier}, tx nonce "
                                       f"{tx.nonce} (at most {self.max_ahead} ahead)",
                                       code="nonce_too_high")
                if len(lane.waiting) >= self.max_waiting_per_sender:
                    raise NonceRefused("too many transactions of this account wait for a "
                                       "missing nonce", code="nonce_too_high")
                lane.waiting[tx.nonce] = tx
            else:
                self._ready[tx.id] = tx
            lane.held[tx.nonce] = tx.id
            self._all[tx.id] = tx
            self._bytes += len(tx.raw)
            self._promote(lane)

    def take_batch(self, max_txs: int, max_bytes: int, max_gas: int | None = None
                   ) -> list[LaneTx]:
        """The next batch from the ready queue, in arrival order (so each sender's
        transactions in nonce order); they stay known (in flight) until ``done``.

        ``max_gas`` bounds the gas the batch's transactions offer, as a miner fills a block
        up to its gas limit: what a transaction offers is at least what it uses, so the
        whole batch fits the block and none is left out for want of gas (geth's rule)."""
        with self._lock:
            batch: list[LaneTx] = []
            size = gas = 0
            while self._ready and len(batch) < max_txs:
                txid, tx = next(iter(self._ready.items()))
                if batch and size + len(tx.raw) > max_bytes:
                    break
                if batch and max_gas is not None and gas + tx.gas > max_gas:
                    break
                gas += tx.gas
                del self._ready[txid]
                self._inflight.add(txid)
                self._bytes -= len(tx.raw)
                batch.append(tx)
                size += len(tx.raw)
            return batch

    def requeue(self, txs: list[LaneTx]) -> None:
        """Return in-flight transactions of a proposal that lost to the front of the ready
        queue, in their order (which keeps each sender's nonce order)."""
        with self._lock:
            for tx in reversed(txs):
                if tx.id in self._inflight:
                    self._inflight.discard(tx.id)
                    self._ready[tx.id] = tx
                    self._ready.move_to_end(tx.id, last=False)
                    self._bytes += len(tx.raw)

    def done(self, txids: Iterable[bytes]) -> None:
        """Forget transactions a committed block carried: their nonces are consumed (a
        block holds only transactions that execute, reverted ones included)."""
        with self._lock:
            for txid in txids:
                self._forget(txid, consumed=True)

    def discard(self, txids: Iterable[bytes]) -> None:
        """Forget transactions committed in a block this node did not build."""
        self.done(txids)

    def drop(self, txids: Iterable[bytes]) -> None:
        """Forget transactions a proposal found invalid (their nonce is not consumed); the
        sender's later transactions wait again, as they now follow a gap."""
        with self._lock:
            for txid in txids:
                self._forget(txid, consumed=False)

    def settle(self, senders: Iterable[bytes]) -> list[bytes]:
        """After a block committed: re-read the committed nonce of ``senders`` and drop the
        held transactions it made stale (a transaction sent to another node took their
        nonce). Returns the ids dropped."""
        dropped: list[bytes] = []
        with self._lock:
            for sender in set(senders):
                lane = self._lanes.get(sender)
                if lane is None:
                    continue
                committed = self._nonce_of(sender)
                for nonce in [n for n in lane.held if n < committed]:
                    txid = lane.held[nonce]
                    if txid not in self._inflight:
                        dropped.append(txid)
                        self._forget(txid, consumed=True)
                lane = self._lanes.get(sender)
                if lane is not None and committed > lane.next_nonce:
                    lane.next_nonce = committed
                    self._promote(lane)
        return dropped

    # -- internals (lock held) ---------------------------------------------------------------

    def _lane(self, sender: bytes) -> _Lane:
        lane = self._lanes.get(sender)
        if lane is None:
            lane = self._lanes[sender] = _Lane(self._nonce_of(sender))
        return lane

    @staticmethod
    def _frontier(lane: _Lane) -> int:
        """The lowest nonce not held without a gap: the nonce that is ready on arrival."""
        n = lane.next_nonce
        while n in lane.held and n not in lane.waiting:
            n += 1
        return n

    def _promote(self, lane: _Lane) -> None:
        n = self._frontier(lane)
        while n in lane.waiting:
            tx = lane.waiting.pop(n)
            self._ready[tx.id] = tx
            n = self._frontier(lane)

    def _forget(self, txid: bytes, *, consumed: bool) -> None:
        tx = self._all.pop(txid, None)
        if tx is None:
            return
        if txid in self._inflight:
            self._inflight.discard(txid)
        else:
            self._bytes -= len(tx.raw)
            self._ready.pop(txid, None)
        lane = self._lanes[tx.sender]
        lane.waiting.pop(tx.nonce, None)
        if lane.held.get(tx.nonce) == txid:
            del lane.held[tx.nonce]
        if consumed:
            lane.next_nonce = max(lane.next_nonce, tx.nonce + 1)
        else:
            self._demote_after(lane, tx.nonce)
        self._promote(lane)
        if not lane.held:
            del self._lanes[tx.sender]

    def _demote_after(self, lane: _Lane, nonce: int) -> None:
        """Move the lane's ready transactions above ``nonce`` back to waiting (a gap now
        precedes them); in-flight ones stay with their proposal, which will drop them."""
        for n, txid in lane.held.items():
            if n > nonce and txid in self._ready:
                lane.waiting[n] = self._ready.pop(txid)
