"""Ordering: every admitted transaction ends up in a block, whatever cut the block before it.

The ordering loop cuts a batch when the pool reaches ``max_block_txs`` or the batch
timeout expires; ``take_batch`` also cuts at ``max_block_bytes`` and orders a
configuration transaction alone. Whatever stays in the pool after a cut must go
into the next block without waiting for more traffic. Each test has its own node,
so a transaction left behind cannot leak into another test.
"""

from __future__ import annotations

import os

import pytest

from consortia.sdk import InvalidProof, NodeClient, load_genesis, notary, sign, verify_proof
from consortia.types.block import Block
from consortia.types.config import BlockLimits, Role
from tests.integration.helpers import chain_state

pytestmark = pytest.mark.integration

CHAIN = "ordering"
# Far longer than any batch timeout below: a transaction still pending after this is stuck.
SETTLE_S = 10.0


def test_transactions_queued_behind_a_configuration_tx_are_committed(farm):
    """A CRL update is ordered alone; the notary transactions admitted with it must follow
    in the next block (and bob's, signed before his revocation, is INVALID there)."""
    net = farm.network("cfg", chain_id=CHAIN, limits=BlockLimits(batch_timeout_ms=100))
    node = farm.node(net)
    alice = net.identity("org1/alice")
    bob = net.new_identity("org1", "bob", Role.CLIENT)
    crl = net.revoke("org1", "bob")
    bob_tx = sign(bob, CHAIN, notary.content("bob-after-revocation", b"b"))
    alice_tx = sign(alice, CHAIN, notary.content("alice-after-revocation", b"a"))
    with NodeClient(node.url, timeout=30) as c, node.http() as http:
        _, count0 = chain_state(http)
        out = c.submit_batch([crl, bob_tx, alice_tx], wait=True, timeout=SETTLE_S)
        assert out["accepted"] == 3, out
        r_crl, r_bob, r_alice = out["results"]
        assert r_crl["status"] == "committed", out
        assert r_bob["status"] == "invalid", f"bob's transaction never left the pool: {out}"
        assert r_bob["error"] == "revoked_identity"
        assert r_alice["status"] == "committed", f"alice's transaction is stuck: {out}"
        assert r_bob["height"] == r_alice["height"] == r_crl["height"] + 1

        assert c.block(r_crl["height"])["tx_count"] == 1
        assert chain_state(http)[1] == count0 + 3
        # INVALID transactions are stored with their code, not indexed, and never prove.
        doc = c.transaction(bob_tx.id)
        assert doc["receipt"] == {"status": "invalid", "height": r_bob["height"],
                                  "index": r_bob["index"], "error": "revoked_identity"}
        assert c.records(business_id="bob-after-revocation")["records"] == []
        genesis = load_genesis(net.genesis_path)
        with pytest.raises(InvalidProof, match="revoked_identity"):
            verify_proof(c.proof(bob_tx.id), genesis)
        assert verify_proof(c.proof(alice_tx.id), genesis).height == r_alice["height"]


def test_transactions_beyond_the_block_byte_limit_go_into_the_next_blocks(farm):
    net = farm.network("bytes", chain_id=CHAIN,
                       limits=BlockLimits(batch_timeout_ms=100, max_block_bytes=8192,
                                         max_tx_bytes=8192))
    node = farm.node(net)
    alice = net.identity("org1/alice")
    txs = [sign(alice, CHAIN, notary.content(f"big-{i}", os.urandom(3000))) for i in range(5)]
    with NodeClient(node.url, timeout=30) as c, node.http() as http:
        out = c.submit_batch(txs, wait=True, timeout=SETTLE_S)
        assert out["accepted"] == 5, out
        statuses = [r["status"] for r in out["results"]]
        assert statuses == ["committed"] * 5, f"transactions left in the pool: {out}"
        heights = sorted({r["height"] for r in out["results"]})
        assert len(heights) >= 3
        for h in heights:
            raw = http.get(f"/v1/blocks/{h}", params={"raw": "true"}).content
            assert sum(len(e) for e in Block.decode(raw).envelopes) <= 8192


def test_transactions_beyond_the_block_count_limit_go_into_the_next_blocks(farm):
    net = farm.network("count", chain_id=CHAIN,
                       limits=BlockLimits(batch_timeout_ms=100, max_block_txs=3))
    node = farm.node(net)
    alice = net.identity("org1/alice")
    txs = [sign(alice, CHAIN, notary.digest(f"n-{i}", os.urandom(8))) for i in range(8)]
    with NodeClient(node.url, timeout=30) as c:
        out = c.submit_batch(txs, wait=True, timeout=SETTLE_S)
        assert [r["status"] for r in out["results"]] == ["committed"] * 8, out
        per_block: dict[int, list[int]] = {}
        for r in out["results"]:
            per_block.setdefault(r["height"], []).append(r["index"])
        assert all(len(ix) <= 3 for ix in per_block.values())
        assert len(per_block) >= 3
        # Submission order is block order.
        order = [(r["height"], r["index"]) for r in out["results"]]
        assert order == sorted(order)
