"""Offline proofs (ledger/proof.py): built from the store, verified against a genesis only."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from consortia.ledger.proof import PROOF_FORMAT, build_proof, dumps, verify_proof
from consortia.types.block import Block, Header
from consortia.types.errors import InvalidProof, NotFound
from consortia.types.tx import Envelope, Payload, TxType
from tests.unit.conftest import CHAIN_ID, SUITE, Sample, make_world


def _proof(sample: Sample, label: str) -> bytes:
    return build_proof(sample.store, SUITE, sample.world.genesis.hash, sample.ids[label])


def _edit(proof: bytes, **changes: Any) -> bytes:
    """Change fields and re-spell the proof canonically (so only the semantics differ)."""
    doc = orjson.loads(proof)
    doc.update(changes)
    return dumps(doc)


def test_proof_establishes_the_transaction(sample: Sample) -> None:
    proof = _proof(sample, "inv-1")
    doc = orjson.loads(proof)
    assert doc["format"] == PROOF_FORMAT and doc["config_blocks"] == []
    assert proof == dumps(doc) and proof.endswith(b"\n")
    v = verify_proof(proof, sample.world.genesis)
    stored = sample.store.tx(sample.ids["inv-1"])
    blk = sample.store.block(1)
    assert stored is not None and blk is not None
    assert v.chain_id == CHAIN_ID
    assert v.tx_id == sample.ids["inv-1"]
    assert v.payload == Payload.decode(Envelope.decode(stored.envelope).payload)
    assert v.payload.type is TxType.NOTARY_HASH
    assert v.payload.body.meta.business_id == "inv-1"  # type: ignore[union-attr]
    assert (v.signer_org, v.signer_name, v.signer_role) == ("org1", "alice", "client")
    assert (v.height, v.index) == (1, 0)
    assert v.block_hash == blk.hash
    assert v.block_time_ms == Header.decode(blk.header).timestamp_ms
    assert v.validators == ("validator0",)


@pytest.mark.parametrize("label", ["inv-1", "inv-2", "c-1", "inv-1b", "inv-3", "l-1", "crl",
                                   "after", "inv-4"])
def test_every_valid_transaction_has_a_verifying_proof(sample: Sample, label: str) -> None:
    v = verify_proof(_proof(sample, label), sample.world.genesis)
    assert v.tx_id == sample.ids[label]
    stored = sample.store.tx(sample.ids[label])
    assert stored is not None and (v.height, v.index) == (stored.height, stored.index)


def test_proof_of_the_configuration_transaction(sample: Sample) -> None:
    v = verify_proof(_proof(sample, "crl"), sample.world.genesis)
    assert v.height == 3 and v.payload.type is TxType.CRL_UPDATE
    assert (v.signer_org, v.signer_role) == ("org1", "admin")
    assert orjson.loads(_proof(sample, "crl"))["config_blocks"] == []


def test_proof_after_a_configuration_block_carries_it(sample: Sample) -> None:
    proof = _proof(sample, "after")
    doc = orjson.loads(proof)
    assert len(doc["config_blocks"]) == 1
    cb = Block.decode(bytes.fromhex(doc["config_blocks"][0]))
    assert cb.header.height == 3 and cb.header.is_config
    assert Envelope.decode(cb.envelopes[0]).payload == Envelope.decode(
        sample.store.tx(sample.ids["crl"]).envelope).payload  # type: ignore[union-attr]
    v = verify_proof(proof, sample.world.genesis)
    assert (v.height, v.index, v.signer_name) == (4, 1, "alice")
    without = _edit(proof, config_blocks=[])
    with pytest.raises(InvalidProof, match="omits configuration blocks"):
        verify_proof(without, sample.world.genesis)


def test_config_block_list_must_hold_configuration_blocks_in_order(sample: Sample) -> None:
    proof = _proof(sample, "inv-4")
    doc = orjson.loads(proof)
    (cb,) = doc["config_blocks"]
    other = orjson.loads(_proof(sample, "after"))  # reuse its block 3 bytes
    assert other["config_blocks"] == [cb]
    # block 4 is not a configuration block
    b4 = Block(Header.decode(sample.store.block(4).header),  # type: ignore[union-attr]
               sample.store.block(4).header,  # type: ignore[union-attr]
               *_cert_and_envs(sample, 4)).encode().hex()
    for bad in ([cb, cb], [b4], [cb, b4], ["zz"], [cb.upper()], "notalist"):
        with pytest.raises(InvalidProof):
            verify_proof(_edit(proof, config_blocks=bad), sample.world.genesis)


def _cert_and_envs(sample: Sample, height: int) -> tuple[Any, tuple[bytes, ...]]:
    from consortia.types.block import Certificate
    blk = sample.store.block(height)
    assert blk is not None
    return (Certificate.decode(blk.certificate),
            tuple(t.envelope for t in sample.store.block_txs(height)))


def test_historic_validity_survives_later_revocation(sample: Sample) -> None:
    """org1/bob signed inv-3 at height 2 and was revoked at height 3: still proven."""
    v = verify_proof(_proof(sample, "inv-3"), sample.world.genesis)
    assert (v.signer_org, v.signer_name, v.height) == ("org1", "bob", 2)


def test_proof_of_a_rejected_transaction_fails(sample: Sample) -> None:
    proof = _proof(sample, "late")
    assert orjson.loads(proof)["result"] != "9200a0"
    with pytest.raises(InvalidProof, match="rejected: revoked_identity"):
        verify_proof(proof, sample.world.genesis)
    # claiming it was VALID breaks the result's inclusion path
    with pytest.raises(InvalidProof, match="result is not included"):
        verify_proof(_edit(proof, result="9200a0"), sample.world.genesis)


def test_proof_against_another_genesis_fails(sample: Sample) -> None:
    proof = _proof(sample, "inv-1")
    same_id = make_world()  # same chain id, other genesis block
    with pytest.raises(InvalidProof, match="another genesis"):
        verify_proof(proof, same_id.genesis)
    other_id = make_world("other-chain")
    with pytest.raises(InvalidProof, match="chain"):
        verify_proof(proof, other_id.genesis)
    # even naming the other genesis in the proof, its validators did not sign the block
    with pytest.raises(InvalidProof, match="commit certificate"):
        verify_proof(_edit(proof, genesis_hash=same_id.genesis.hash.hex()), same_id.genesis)


@pytest.mark.parametrize("label", ["inv-1", "after", "genesis"])
def test_every_single_byte_flip_invalidates_the_proof(sample: Sample, label: str) -> None:
    proof = _proof(sample, label)
    genesis = sample.world.genesis
    verify_proof(proof, genesis)
    escaped: dict[str, list[int]] = {}
    for i in range(len(proof)):
        b = bytearray(proof)
        b[i] ^= 0x01
        try:
            verify_proof(bytes(b), genesis)
            outcome = "accepted"
        except InvalidProof:
            continue
        except Exception as exc:
            outcome = type(exc).__name__
        escaped.setdefault(outcome, []).append(i)
    assert escaped == {}, {k: (len(v), v[:10]) for k, v in escaped.items()}


def test_semantic_edits_are_caught(sample: Sample) -> None:
    g = sample.world.genesis
    proof = _proof(sample, "inv-2")  # block 1, index 1
    doc = orjson.loads(proof)
    sibling = orjson.loads(_proof(sample, "c-1"))  # block 1, index 2
    block2 = orjson.loads(_proof(sample, "inv-3"))  # block 2
    edits: list[tuple[dict[str, Any], str]] = [
        ({"index": 2}, "not included"),
        ({"index": 0}, "not included"),
        ({"index": True}, "index"),
        ({"index": "1"}, "index"),
        ({"tx": sibling["tx"]}, "not included"),
        ({"tx": sibling["tx"], "index": 2, "tx_path": sibling["tx_path"]},
         "result is not included"),
        ({"tx": sibling["tx"], "index": 2, "tx_path": sibling["tx_path"],
          "result_path": sibling["result_path"]}, "tx_id is not the hash"),
        ({"tx_id": sibling["tx_id"]}, "tx_id"),
        ({"certificate": block2["certificate"]}, "commit certificate"),
        ({"block_header": block2["block_header"]}, "commit certificate"),
        ({"tx_path": doc["tx_path"][:-1]}, "not included"),
        ({"tx_path": [*doc["tx_path"], doc["tx_path"][0]]}, "not included"),
        ({"result_path": []}, "result is not included"),
        ({"format": "consortia-proof/2"}, "format"),
        ({"chain_id": "other"}, "chain"),
        ({"genesis_hash": "00" * 32}, "genesis"),
        ({"tx": doc["tx"].upper()}, "lowercase hex"),
        ({"tx": doc["tx"] + "0"}, "hex"),
    ]
    for change, message in edits:
        with pytest.raises(InvalidProof, match=message):
            verify_proof(_edit(proof, **change), g)


def test_proof_spelling_is_checked(sample: Sample) -> None:
    g = sample.world.genesis
    proof = _proof(sample, "inv-1")
    doc = orjson.loads(proof)
    with pytest.raises(InvalidProof, match="canonical"):
        verify_proof(orjson.dumps(doc), g)
    with pytest.raises(InvalidProof, match="canonical"):
        verify_proof(proof[:-1], g)
    with pytest.raises(InvalidProof, match="canonical"):
        verify_proof(proof + b"\n", g)
    with pytest.raises(InvalidProof, match="fields"):
        verify_proof(dumps({**doc, "extra": 1}), g)
    missing = dict(doc)
    del missing["result_path"]
    with pytest.raises(InvalidProof, match="fields"):
        verify_proof(dumps(missing), g)
    for raw in (b"", b"[]", b"not json", b"null"):
        with pytest.raises(InvalidProof):
            verify_proof(raw, g)


def test_unknown_transaction_has_no_proof(sample: Sample) -> None:
    with pytest.raises(NotFound):
        build_proof(sample.store, SUITE, sample.world.genesis.hash, bytes(32))


def test_proof_of_the_genesis_transaction(sample: Sample) -> None:
    """Genesis is final by being the trusted genesis, not by votes: its configuration
    transaction is proven against that genesis only."""
    gtx = sample.store.block_txs(0)[0]
    assert gtx.txid == sample.ids["genesis"]
    proof = _proof(sample, "genesis")
    v = verify_proof(proof, sample.world.genesis)
    assert (v.height, v.index, v.tx_id) == (0, 0, gtx.txid)
    assert v.block_hash == sample.world.genesis.hash
    assert v.payload.type is TxType.CONFIG
    assert (v.signer_org, v.signer_role) == ("org1", "admin")
    with pytest.raises(InvalidProof):
        verify_proof(proof, make_world().genesis)
    # a height-0 header that is not the given genesis is refused
    other = make_world()
    forged = _edit(proof, block_header=other.genesis.block.header_bytes.hex())
    with pytest.raises(InvalidProof, match="genesis"):
        verify_proof(forged, sample.world.genesis)
