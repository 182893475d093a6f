"""The nonce-lane pool of account transactions: a batch never holds a nonce gap, a sender's
transactions leave in nonce order whatever order they arrived in, and the refusals carry the
messages Ethereum clients know."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from consortia.txpool.lanes import LanePool, NonceRefused
from consortia.types.errors import Duplicate, PoolFull


@dataclass(frozen=True)
class T:
    sender: bytes
    nonce: int
    tag: str = ""
    gas: int = 21_000

    @property
    def id(self) -> bytes:
        return self.sender + self.nonce.to_bytes(4, "big") + self.tag.encode()

    @property
    def raw(self) -> bytes:
        return b"x" * 100


A, B = b"A" * 20, b"B" * 20


def _pool(state: dict[bytes, int] | None = None, **kw: int) -> LanePool:
    nonces = state if state is not None else {}
    return LanePool(lambda s: nonces.get(s, 0), max_txs=kw.pop("max_txs", 1000),
                    max_bytes=kw.pop("max_bytes", 10**6), **kw)


def _nonces(batch: list) -> list[tuple[bytes, int]]:  # type: ignore[type-arg]
    return [(t.sender, t.nonce) for t in batch]


def test_out_of_order_arrivals_leave_in_nonce_order() -> None:
    pool = _pool()
    for n in (2, 0, 3, 1):
        pool.add(T(A, n))
    pool.add(T(B, 0))
    assert pool.ready == 5 and pool.next_nonce(A) == 4
    batch = pool.take_batch(100, 10**6)
    assert _nonces(batch) == [(A, 0), (A, 1), (A, 2), (A, 3), (B, 0)]


def test_a_gap_holds_the_successors_back() -> None:
    pool = _pool({A: 5})
    pool.add(T(A, 7))
    pool.add(T(A, 8))
    assert pool.ready == 0 and len(pool) == 2
    assert pool.take_batch(100, 10**6) == []
    assert pool.next_nonce(A) == 5  # what eth_getTransactionCount(pending) reports
    pool.add(T(A, 5))
    assert _nonces(pool.take_batch(100, 10**6)) == [(A, 5)]
    pool.add(T(A, 6))  # arrives while 5 is in flight: 6, 7, 8 are ready now
    assert _nonces(pool.take_batch(100, 10**6)) == [(A, 6), (A, 7), (A, 8)]


def test_refusals() -> None:
    pool = _pool({A: 3}, max_ahead=4, max_waiting_per_sender=2)
    with pytest.raises(NonceRefused, match="nonce too low") as low:
        pool.add(T(A, 2))
    assert low.value.code == "nonce_too_low"
    pool.add(T(A, 3))
    with pytest.raises(Duplicate, match="already known"):
        pool.add(T(A, 3))
    with pytest.raises(NonceRefused) as taken:
        pool.add(T(A, 3, tag="other"))
    assert taken.value.code == "nonce_taken"
    with pytest.raises(NonceRefused, match="nonce too high") as high:
        pool.add(T(A, 9))  # the next nonce is 4; 9 is 5 ahead
    assert high.value.code == "nonce_too_high"
    pool.add(T(A, 6))
    pool.add(T(A, 7))
    with pytest.raises(NonceRefused, match="wait for a missing nonce"):
        pool.add(T(A, 8))
    assert len(pool) == 3  # nothing refused was kept


def test_bounds() -> None:
    pool = _pool(max_txs=2)
    pool.add(T(A, 0))
    pool.add(T(B, 0))
    with pytest.raises(PoolFull):
        pool.add(T(A, 1))
    pool.take_batch(1, 10**6)  # one in flight frees one place
    pool.add(T(A, 1))
    by_bytes = _pool(max_bytes=250)
    by_bytes.add(T(A, 0))
    by_bytes.add(T(A, 1))
    with pytest.raises(PoolFull):
        by_bytes.add(T(A, 2))
    assert _nonces(by_bytes.take_batch(10, 150)) == [(A, 0)]  # the byte limit of a batch


def test_committed_and_lost_proposals() -> None:
    state = {A: 0}
    pool = _pool(state)
    for n in range(4):
        pool.add(T(A, n))
    first = pool.take_batch(2, 10**6)
    pool.requeue(first)  # the proposal lost: the same order comes back first
    again = pool.take_batch(3, 10**6)
    assert _nonces(again) == [(A, 0), (A, 1), (A, 2)]
    state[A] = 3
    pool.done([t.id for t in again])
    assert pool.next_nonce(A) == 4 and len(pool) == 1 and pool.inflight == 0
    with pytest.raises(NonceRefused, match="nonce too low"):
        pool.add(T(A, 1))


def test_a_dropped_transaction_puts_its_successors_back_behind_the_gap() -> None:
    pool = _pool()
    for n in range(3):
        pool.add(T(A, n))
    batch = pool.take_batch(1, 10**6)
    pool.drop([batch[0].id])  # nonce 0 failed its checks in the proposal
    assert pool.ready == 0 and pool.next_nonce(A) == 0
    pool.add(T(A, 0, tag="retry"))
    assert _nonces(pool.take_batch(10, 10**6)) == [(A, 0), (A, 1), (A, 2)]


def test_settle_drops_what_another_node_committed() -> None:
    state = {A: 0}
    pool = _pool(state)
    pool.add(T(A, 0))
    pool.add(T(A, 2))
    state[A] = 2  # a block from another validator carried A's nonces 0 and 1
    dropped = pool.settle([A])
    assert dropped == [T(A, 0).id]
    assert _nonces(pool.take_batch(10, 10**6)) == [(A, 2)]


def test_no_batch_ever_holds_a_gap_whatever_the_arrival_order() -> None:
    rng = random.Random(7)
    state: dict[bytes, int] = {}
    pool = _pool(state, max_ahead=1000, max_waiting_per_sender=1000)
    senders = [bytes([i]) * 20 for i in range(5)]
    txs = [T(s, n) for s in senders for n in range(40)]
    rng.shuffle(txs)
    committed: dict[bytes, int] = {s: 0 for s in senders}
    for i, tx in enumerate(txs):
        pool.add(tx)
        if i % 7 == 0:
            batch = pool.take_batch(rng.randint(1, 20), 10**6)
            for t in batch:
                assert t.nonce == committed[t.sender], "a gap or a reordering"
                committed[t.sender] += 1
            state.update(committed)
            pool.done([t.id for t in batch])
    rest = pool.take_batch(10**6, 10**9)
    for t in rest:
        assert t.nonce == committed[t.sender]
        committed[t.sender] += 1
    assert all(n == 40 for n in committed.values()) and len(pool) == 0


def test_a_batch_offers_no_more_gas_than_the_block_holds() -> None:
    pool = _pool()
    for n in range(5):
        pool.add(T(A, n, gas=60_000))
    first = pool.take_batch(100, 10**6, max_gas=150_000)
    assert _nonces(first) == [(A, 0), (A, 1)]  # a third would offer 180,000
    assert _nonces(pool.take_batch(100, 10**6, max_gas=150_000)) == [(A, 2), (A, 3)]
    pool.add(T(B, 0, gas=500_000))  # above the limit alone: a batch of one still takes it
    assert _nonces(pool.take_batch(100, 10**6, max_gas=60_000)) == [(A, 4)]
    assert _nonces(pool.take_batch(100, 10**6, max_gas=60_000)) == [(B, 0)]
