"""A peer verifies every served block as a validator catching up would, before storing it.

The sample chain (five blocks, one of them a CRL configuration block) is ordered by solo
in a ``Harness``; a second ledger stands for the peer and is fed the canonical block bytes
a validator's ``GET /v1/sync/blocks`` serves. Tampered blocks stand for a Byzantine
validator: some merely edited (the certificate no longer matches), some re-signed with the
validator's real key (the certificate is valid, the content is not) — the peer must refuse
each one and store nothing of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgpack
import pytest

from consortia.ledger import hashing
from consortia.ledger.certify import sign_vote
from consortia.ledger.hashing import block_hash
from consortia.ledger.store import LedgerStore
from consortia.ledger.verify import load_block, verify_chain
from consortia.node.chain import Chain
from consortia.node.follow import BlockVerifier
from consortia.node.peer import PeerNode, Refused, Sources, check_peer_identity, decode_blocks
from consortia.node.settings import NodeSettings
from consortia.txpool.admission import Admission
from consortia.types.block import VALID, Block, Certificate
from consortia.types.errors import ConfigError
from consortia.types.tx import Envelope
from tests.unit.conftest import CHAIN_ID, NOW_MS, SUITE, Sample, build_sample, digest_tx, make_world


class Peer:
    """A peer's ledger and verifier, on the genesis of ``sample``."""

    def __init__(self, path: Path, sample: Sample) -> None:
        w = sample.world
        self.store = LedgerStore(path)
        self.chain = Chain(self.store, w.genesis, w.org2["peer0"].key)
        self.admission = Admission(SUITE, self.chain.config, lambda: NOW_MS)
        self.verifier = BlockVerifier(self.chain, self.admission)


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Sample]:
    s = build_sample(tmp_path / "validator.db", make_world())
    yield s
    s.harness.close()


@pytest.fixture
def peer(tmp_path: Path, sample: Sample) -> Iterator[Peer]:
    p = Peer(tmp_path / "peer.db", sample)
    yield p
    p.store.close()


def served(sample: Sample, height: int) -> Block:
    return load_block(sample.store, height)[0]


def resigned(sample: Sample, block: Block, **header_changes: object) -> Block:
    """``block`` with its header changed and a valid certificate by the (only) validator:
    what a Byzantine validator holding a quorum of keys could serve."""
    header = dataclasses.replace(block.header, **header_changes)  # type: ignore[arg-type]
    hb = header.encode()
    digest = block_hash(SUITE, hb)
    vote = sign_vote(sample.world.validator.key, "validator0", CHAIN_ID, header.height, 0,
                     digest)
    return Block(header, hb, Certificate(header.height, 0, digest, (vote,)), block.envelopes)


def test_a_peer_follows_the_whole_chain_and_stores_the_same_bytes(sample: Sample,
                                                                  peer: Peer) -> None:
    top = sample.store.height
    outcome = peer.verifier.apply_many([served(sample, h).encode() for h in range(1, top + 1)])
    assert outcome.refused is None
    assert [a.height for a in outcome.applied] == list(range(1, top + 1))
    assert [a.reconfigured for a in outcome.applied] == [h == 3 for h in range(1, top + 1)]
    assert peer.store.height == top
    assert verify_chain(peer.store, sample.world.genesis, tail=None) == top
    for h in range(top + 1):
        assert served(sample, h).encode() == load_block(peer.store, h)[0].encode()
        assert [t.result for t in peer.store.block_txs(h)] == \
            [t.result for t in sample.store.block_txs(h)]
    # The CRL block changed the configuration on the peer too: the revoked signer's late
    # transaction is INVALID there as on the validator, and admission knows the new CRL.
    assert peer.chain.config.encode() == sample.harness.chain.config.encode()
    assert peer.admission.config.encode() == sample.harness.chain.config.encode()
    late = peer.store.tx(sample.ids["late"])
    assert late is not None and late.result.code == "revoked_identity"


def _refused(peer: Peer, raw: bytes, fragment: str) -> None:
    before = (peer.store.height, peer.store.tx_total, peer.chain.last_hash)
    outcome = peer.verifier.apply_many([raw])
    assert outcome.applied == []
    assert outcome.refused is not None and fragment in outcome.refused.message, outcome.refused
    assert (peer.store.height, peer.store.tx_total, peer.chain.last_hash) == before


def test_edited_blocks_are_refused_and_nothing_is_stored(sample: Sample, peer: Peer) -> None:
    b1 = served(sample, 1)
    other = digest_tx(sample.world.org1["alice"], "forged").envelope
    _refused(peer, dataclasses.replace(b1, envelopes=(other, *b1.envelopes[1:])).encode(),
             "tx_root")
    _refused(peer, dataclasses.replace(b1, envelopes=b1.envelopes[:-1]).encode(),
             "transactions")
    bad_vote = dataclasses.replace(b1.certificate.votes[0], signature=bytes(64))
    _refused(peer, dataclasses.replace(b1, certificate=dataclasses.replace(
        b1.certificate, votes=(bad_vote,))).encode(), "bad signature")
    stranger = sign_vote(sample.world.org2["peer0"].key, "peer0", CHAIN_ID, 1, 0,
                         b1.certificate.block_hash)
    _refused(peer, dataclasses.replace(b1, certificate=dataclasses.replace(
        b1.certificate, votes=(stranger,))).encode(), "not a validator")
    _refused(peer, served(sample, 2).encode(), "expected 1")
    _refused(peer, b"\x93\x01\x02", "cannot be decoded")
    assert peer.store.height == 0


def _with_txs(sample: Sample, block: Block, envelopes: list[bytes]) -> Block:
    """``block`` holding ``envelopes`` instead, its header claiming them all VALID, re-signed."""
    body = dataclasses.replace(block, envelopes=tuple(envelopes))
    return resigned(sample, body, tx_count=len(envelopes),
                    tx_root=hashing.tx_root(SUITE, tuple(envelopes)),
                    results_root=hashing.results_root(SUITE, [VALID] * len(envelopes)))


def test_certified_lies_are_refused_by_re_execution(sample: Sample, peer: Peer) -> None:
    """A block with a valid certificate whose content does not re-execute to its header:
    results that lie, a link to another block, a transaction by an unknown signer."""
    b1 = served(sample, 1)
    _refused(peer, resigned(sample, b1, results_root=bytes(32)).encode(),
             "does not match its re-execution")
    _refused(peer, resigned(sample, b1, prev_hash=bytes(32)).encode(), "prev_hash")
    _refused(peer, resigned(sample, b1, chain_id="another").encode(), "chain id")
    outsider = make_world().org1["alice"]  # same names, another CA
    _refused(peer, _with_txs(sample, b1, [digest_tx(outsider, "x").envelope]).encode(),
             "does not match its re-execution")  # it would execute INVALID unknown_identity
    env = Envelope.decode(digest_tx(sample.world.org1["alice"], "y").envelope)
    other = Envelope.decode(digest_tx(sample.world.org1["alice"], "z").envelope)
    swapped = dataclasses.replace(env, signature=other.signature).encode()
    _refused(peer, _with_txs(sample, b1, [swapped]).encode(), "signature does not verify")
    assert peer.verifier.apply_many([b1.encode()]).refused is None  # the true one is fine


def test_a_batch_stops_at_the_first_refused_block(sample: Sample, peer: Peer) -> None:
    b2 = served(sample, 2)
    tampered = dataclasses.replace(b2, envelopes=tuple(reversed(b2.envelopes)))
    outcome = peer.verifier.apply_many([served(sample, 1).encode(), tampered.encode(),
                                        served(sample, 3).encode()])
    assert [a.height for a in outcome.applied] == [1]
    assert outcome.refused is not None and "block 2" in outcome.refused.message
    assert peer.store.height == 1
    # The true block 2 from another validator is accepted next.
    assert peer.verifier.apply_many([b2.encode()]).refused is None
    assert peer.store.height == 2


def test_a_restarted_peer_continues_from_its_ledger(tmp_path: Path, sample: Sample) -> None:
    first = Peer(tmp_path / "p.db", sample)
    assert first.verifier.apply_many([served(sample, h).encode() for h in (1, 2, 3)]
                                     ).refused is None
    first.store.close()
    again = Peer(tmp_path / "p.db", sample)  # the Chain's start-up check runs again
    try:
        assert again.store.height == 3
        assert again.chain.config.sequence == sample.harness.chain.config.sequence
        outcome = again.verifier.apply_many([served(sample, h).encode() for h in (4, 5)])
        assert outcome.refused is None and again.store.height == 5
    finally:
        again.store.close()


def test_peer_identity(sample: Sample, peer: Peer) -> None:
    w = sample.world
    check_peer_identity(peer.chain, "peer0", w.org2["peer0"].cert_der)
    with pytest.raises(ConfigError, match="may not do this"):
        check_peer_identity(peer.chain, "alice", w.org1["alice"].cert_der)
    with pytest.raises(ConfigError, match="is a validator"):
        check_peer_identity(peer.chain, "validator0", w.org2["peer0"].cert_der)
    with pytest.raises(ConfigError):
        check_peer_identity(peer.chain, "x", make_world().org1["peer0"].cert_der)


def _peer_toml(tmp_path: Path, follow: str, extra: str = "") -> NodeSettings:
    p = tmp_path / "peer.toml"
    p.write_text('[node]\nid = "p"\ndata_dir = "d"\ngenesis = "g.json"\nrole = "peer"\n'
                 '[identity]\nkeystore = "k"\nname = "p"\npassphrase_env = "X"\n'
                 + follow + extra)
    return NodeSettings.load(p)


def test_peer_settings(tmp_path: Path) -> None:
    s = _peer_toml(tmp_path, '[follow]\nvalidators = ["http://127.0.0.1:7050/", '
                              '"https://v2.example:8443"]\n')
    assert s.is_peer and s.follow is not None
    assert s.follow.urls() == ["http://127.0.0.1:7050", "https://v2.example:8443"]
    for follow, fragment in [
        ("", "needs a [follow]"),
        ("[follow]\nvalidators = []\n", "at least 1"),
        ('[follow]\nvalidators = ["ftp://x:1"]\n', "is not http"),
        ('[follow]\nvalidators = ["http://x:1/v1"]\n', "is not http"),
        ('[follow]\nvalidators = ["http://x:99999"]\n', "invalid port"),
        ('[follow]\nvalidators = ["http://x:1", "http://x:1/"]\n', "listed twice"),
        ('[follow]\nvalidators = ["http://x:1"]\npoll_wait_ms = -1\n', "poll_wait_ms"),
    ]:
        with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
            _peer_toml(tmp_path, follow)
    with pytest.raises(ConfigError, match="remove"):
        _peer_toml(tmp_path, '[follow]\nvalidators = ["http://x:1"]\n',
                   '[p2p]\nport = 1\n')
    p = tmp_path / "v.toml"
    p.write_text('[node]\nid = "v"\ndata_dir = "d"\ngenesis = "g.json"\n'
                 '[identity]\nkeystore = "k"\nname = "v"\npassphrase_env = "X"\n'
                 '[follow]\nvalidators = ["http://x:1"]\n')
    with pytest.raises(ConfigError, match="for peers"):
        NodeSettings.load(p)


def test_sources_move_on_from_a_failed_validator() -> None:
    s = Sources(["http://a:1", "http://b:1", "http://c:1"])
    assert s.current == "http://a:1"
    s.failed("http://b:1", "not current")  # noted, but the current one stays
    assert s.current == "http://a:1" and "http://b:1" in s.failures
    s.failed("http://a:1", "timeout")
    assert s.current == "http://b:1"
    assert s.in_order() == ["http://b:1", "http://c:1", "http://a:1"]
    s.ok("http://b:1")
    assert "http://b:1" not in s.failures
    s.failed("http://b:1", "x")
    s.failed("http://c:1", "x")
    assert s.current == "http://a:1"  # round and round: one may have come back
    with pytest.raises(ConfigError):
        Sources([])


def test_decode_blocks() -> None:
    assert decode_blocks(msgpack.packb([], use_bin_type=True), 5) == []
    assert decode_blocks(msgpack.packb([b"a", b"bc"], use_bin_type=True), 5) == [b"a", b"bc"]
    with pytest.raises(Exception, match="at most"):
        decode_blocks(msgpack.packb([b"a"] * 6, use_bin_type=True), 5)


def test_a_validators_answers_to_a_forwarded_batch_are_passed_on() -> None:
    ok = {"status": "pending", "tx_id": "00"}
    dup = {"status": "rejected", "http_status": 409,
           "error": {"code": "duplicate_transaction", "message": "known"}}
    full = {"status": "rejected", "http_status": 429,
            "error": {"code": "pool_full", "message": "full"}}
    r = httpx.Response(200, json={"accepted": 1, "rejected": 2, "results": [ok, dup, full]})
    taken, refused_dup, refused_full = PeerNode._answers(r, 3, ambiguous=False)
    assert taken is None
    assert isinstance(refused_dup, Refused)
    assert (refused_dup.status, refused_dup.code) == (409, "duplicate_transaction")
    assert isinstance(refused_full, Refused)
    assert (refused_full.status, refused_full.code) == (429, "pool_full")
    # After an attempt whose outcome is unknown, "duplicate" means the first one took it.
    assert PeerNode._answers(r, 3, ambiguous=True)[1] is None
    whole = httpx.Response(413, json={"error": {"code": "too_large", "message": "big"}})
    answers = PeerNode._answers(whole, 2, ambiguous=False)
    assert [(a.status, a.code) for a in answers if a is not None] == [(413, "too_large")] * 2
    with pytest.raises(ValueError, match="one result per transaction"):
        PeerNode._answers(r, 2, ambiguous=False)
