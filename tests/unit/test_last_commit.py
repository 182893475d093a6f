"""Canonical certificates: a block carries the certificate of the block before it
(``Header.last_commit``); a validator checks it on proposal and, once the block commits,
stores it in place of its own quorum, so every ledger holds the same bytes below the newest
block. Two ledgers of one chain stand in for two validators: their certificates of block 2
differ (another round), as two pbft validators' quorums of commit votes can."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from consortia.ledger.certify import sign_vote
from consortia.ledger.store import LedgerStore
from consortia.ledger.verify import verify_chain
from consortia.node.replica import ReplicaNodeSupport
from consortia.txpool.pool import TxPool
from consortia.types.block import Block, Certificate, Header
from consortia.types.errors import ChainCorrupted, InvalidBlock
from tests.unit.conftest import CHAIN_ID, Harness, World, digest_tx


class Pair:
    """Ledger A orders blocks with solo; ledger B follows as a replica would."""

    def __init__(self, tmp_path: Path, world: World) -> None:
        self.world = world
        self.a = Harness(tmp_path / "a.db", world)
        self.b = Harness(tmp_path / "b.db", world)
        self.replica = ReplicaNodeSupport(self.b.chain, TxPool(1000, 1 << 20), self.b.admission)
        self.n = 0

    def block_of_a(self) -> Block:
        self.n += 1
        block, _ = self.a.commit(digest_tx(self.world.org1["alice"], f"doc-{self.n}"))
        return block

    def follow(self, block: Block, cert: Certificate | None = None) -> None:
        prepared = self.replica.validate(block.header_bytes, block.envelopes)
        self.b.chain.commit(dataclasses.replace(block, certificate=cert or block.certificate),
                            prepared)

    def resigned(self, block: Block, rnd: int = 1) -> Certificate:
        """Another valid certificate of ``block``: the validator's vote in another round."""
        h, digest = block.header.height, block.certificate.block_hash
        vote = sign_vote(self.world.validator.key, "validator0", CHAIN_ID, h, rnd, digest)
        return Certificate(h, rnd, digest, (vote,))

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture
def pair(tmp_path: Path, fresh_world: World):
    p = Pair(tmp_path, fresh_world)
    yield p
    p.close()


def test_the_next_block_makes_the_certificate_canonical(pair: Pair) -> None:
    b1 = pair.block_of_a()
    assert b1.header.last_commit == b""  # genesis has no votes to carry
    pair.follow(b1)
    b2 = pair.block_of_a()
    assert b2.header.last_certificate() == b1.certificate
    own = pair.resigned(b2)
    pair.follow(b2, own)  # B's own quorum for block 2
    assert pair.b.store.block(2).certificate == own.encode()
    assert pair.a.store.block(2).certificate != own.encode()

    b3 = pair.block_of_a()  # carries A's certificate of block 2
    pair.follow(b3)
    for h in (1, 2):
        assert pair.b.store.block(h).certificate == pair.a.store.block(h).certificate
    assert pair.b.store.block(2).certificate == b2.certificate.encode()
    assert verify_chain(pair.b.store, pair.world.genesis, tail=None) == 3

    # B proposes next: its block carries the certificate it now stores, and A accepts it.
    b4_prepared = pair.b.chain.prepare([], 0, "validator0")
    assert b4_prepared.header.last_commit == pair.a.store.block(3).certificate


def _forged(block: Block, **changes: object) -> bytes:
    return dataclasses.replace(block.header, **changes).encode()  # type: ignore[arg-type]


def test_a_proposal_with_a_bad_last_commit_is_refused(pair: Pair) -> None:
    for _ in range(2):
        pair.follow(pair.block_of_a())
    b3 = pair.block_of_a()
    good = b3.header.last_certificate()
    assert good is not None
    bad_sig = dataclasses.replace(good, votes=(dataclasses.replace(
        good.votes[0], signature=bytes(64)),))
    no_votes = dataclasses.replace(good, votes=())
    other_block = dataclasses.replace(good, block_hash=bytes(32))
    stranger = Certificate(2, 0, good.block_hash, (sign_vote(
        pair.world.org1["alice"].key, "validator0", CHAIN_ID, 2, 0, good.block_hash),))
    cases = {
        "missing": (b"", "does not carry the certificate of block 2"),
        "bad signature": (bad_sig.encode(), "bad signature"),
        "no quorum": (no_votes.encode(), "valid votes, needs"),
        "another block": (other_block.encode(), "certifies another block"),
        "not the validator's key": (stranger.encode(), "bad signature"),
    }
    for name, (last_commit, why) in cases.items():
        with pytest.raises(InvalidBlock, match=why):
            pair.replica.validate(_forged(b3, last_commit=last_commit), b3.envelopes)
        assert pair.b.store.height == 2, name
    assert pair.b.store.block(2).certificate == good.encode()
    pair.follow(b3)  # the genuine proposal still goes through
    assert pair.b.store.height == 3


def test_block_one_carries_no_last_commit(pair: Pair) -> None:
    b1 = pair.block_of_a()
    genesis_cert = Certificate(0, 0, b1.header.prev_hash, ())
    with pytest.raises(InvalidBlock, match="block before has no votes"):
        pair.replica.validate(_forged(b1, last_commit=genesis_cert.encode()), b1.envelopes)


def test_a_stored_certificate_the_next_block_does_not_carry_is_corruption(
        pair: Pair, tmp_path: Path) -> None:
    """A valid certificate of block 2 that is not the one block 3 agreed on: the chain
    check names the link (the stored bytes are no longer the canonical ones)."""
    for _ in range(3):
        pair.block_of_a()
    other = pair.resigned(Block.decode(_raw_block(pair.a.store, 2)), rnd=7)
    pair.a.close()
    con = sqlite3.connect(tmp_path / "a.db")
    con.execute("UPDATE blocks SET certificate=? WHERE height=2", (other.encode(),))
    con.commit()
    con.close()
    store = LedgerStore(tmp_path / "a.db")
    try:
        with pytest.raises(ChainCorrupted, match="block 3: its last commit is not the stored"):
            verify_chain(store, pair.world.genesis, tail=None)
    finally:
        store.close()


def _raw_block(store: LedgerStore, height: int) -> bytes:
    from consortia.ledger.verify import load_block
    return load_block(store, height)[0].encode()


def test_header_last_commit_round_trips() -> None:
    cert = Certificate(4, 2, bytes(32), ())
    h = Header("c", 5, bytes(32), bytes(32), bytes(32), 0, 1, "v", 0, bytes(32), cert.encode())
    assert Header.decode(h.encode()) == h and h.last_certificate() == cert
