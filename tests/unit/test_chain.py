"""An in-process chain: LedgerStore + node.chain.Chain + consensus.solo.Solo + Admission,
with the notary executor (ledger/store.py, verify.py, rules.py, certify.py,
execution/notary.py, node/chain.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from consortia.execution import notary as executor
from consortia.identity.membership import Membership
from consortia.ledger import hashing
from consortia.ledger.certify import sign_vote, verify_certificate
from consortia.ledger.store import LedgerStore
from consortia.ledger.verify import verify_chain
from consortia.node.chain import Chain, check_validator_identity, decode_payload
from consortia.node.replica import ReplicaNodeSupport
from consortia.txpool.admission import Admission
from consortia.txpool.pool import TxPool
from consortia.types.block import VALID, Certificate, Header, Result, TxStatus, Vote
from consortia.types.errors import ChainCorrupted, ConfigError, InvalidBlock, Unauthorized
from consortia.types.tx import CrlUpdate, TxType
from tests.unit.conftest import (
    CHAIN_ID,
    NOW_MS,
    SUITE,
    Harness,
    Sample,
    World,
    digest_tx,
    make_world,
    sign_tx,
)


def _serial(cert_der: bytes) -> int:
    return x509.load_der_x509_certificate(cert_der).serial_number


# -- the committed sample chain ------------------------------------------------------------


def test_whole_chain_verifies(sample: Sample) -> None:
    assert sample.store.height == 5
    assert verify_chain(sample.store, sample.world.genesis, tail=None) == 5
    calls: list[tuple[int, int]] = []
    assert verify_chain(sample.store, sample.world.genesis, tail=None,
                        progress=lambda i, n: calls.append((i, n))) == 5
    assert calls == [(i, 5) for i in range(1, 6)]


@pytest.mark.parametrize("tail", [1, 2, 3, 5, 100])
def test_tail_verification_replays_earlier_configuration(sample: Sample, tail: int) -> None:
    assert verify_chain(sample.store, sample.world.genesis, tail=tail) == min(tail, 5)


def test_blocks_link_and_carry_certificates(sample: Sample) -> None:
    store, w = sample.store, sample.world
    prev = store.block(0)
    assert prev is not None and prev.hash == w.genesis.hash and prev.is_config
    last_ts = 0
    for height in range(1, 6):
        blk = store.block(height)
        assert blk is not None
        hd = Header.decode(blk.header)
        assert hd.height == height and hd.prev_hash == prev.hash
        assert blk.hash == hashing.block_hash(SUITE, blk.header)
        assert store.block_by_hash(blk.hash) == blk
        assert hd.proposer == "validator0" and hd.chain_id == CHAIN_ID
        assert hd.timestamp_ms >= last_ts
        last_ts = hd.timestamp_ms
        cert = Certificate.decode(blk.certificate)
        assert [v.validator_id for v in cert.votes] == ["validator0"]
        verify_certificate(SUITE, w.config, hd, blk.hash, cert)
        txs = store.block_txs(height)
        assert hd.tx_count == len(txs) == blk.tx_count
        assert hd.tx_root == hashing.tx_root(SUITE, [t.envelope for t in txs])
        assert hd.results_root == hashing.results_root(SUITE, [t.result for t in txs])
        prev = blk
    assert [b.height for b in store.blocks_desc(3)] == [5, 4, 3]
    assert [b.height for b in store.blocks_desc(2, before=2)] == [1, 0]
    assert store.block(6) is None
    assert store.tx_total == 1 + 3 + 3 + 1 + 2 + 1


def test_crl_block_is_a_configuration_block(sample: Sample) -> None:
    store = sample.store
    blk = store.block(3)
    assert blk is not None and blk.is_config
    hd = Header.decode(blk.header)
    assert hd.is_config and hd.config_height == 3 and hd.tx_count == 1
    assert [b.height for b in store.config_blocks(up_to=5)] == [3]
    assert store.config_blocks(up_to=2) == []
    for h in (1, 2):
        assert Header.decode(store.block(h).header).config_height == 0  # type: ignore[union-attr]
        assert not store.block(h).is_config  # type: ignore[union-attr]
    for h in (4, 5):
        assert Header.decode(store.block(h).header).config_height == 3  # type: ignore[union-attr]
    height, config = store.config_in_force()
    assert height == 3 and config.sequence == 1
    assert config.org("org1").crl and not config.org("org2").crl  # type: ignore[union-attr]
    assert hd.config_hash == SUITE.hash(config.encode())
    assert sample.harness.chain.config == config and sample.harness.chain.config_height == 3


def test_revoked_signer_executes_invalid(sample: Sample) -> None:
    late = sample.store.tx(sample.ids["late"])
    assert late is not None and late.height == 4 and late.index == 0
    assert late.result == Result(TxStatus.INVALID, "revoked_identity")
    after = sample.store.tx(sample.ids["after"])
    assert after is not None and after.result == VALID and after.index == 1
    assert sample.store.records_by_business_id("late", 10) == []
    # and admission, reconfigured by the CRL block, now refuses the revoked signer
    adm = sample.harness.admission
    assert adm.config.sequence == 1
    with pytest.raises(Unauthorized) as e:
        adm.check(digest_tx(sample.world.org1["bob"], "again").envelope)
    assert e.value.code == "revoked_identity"
    adm.check(digest_tx(sample.world.org1["alice"], "again").envelope)


def test_stored_transactions(sample: Sample) -> None:
    crl = sample.store.tx(sample.ids["crl"])
    assert crl is not None and crl.type is TxType.CRL_UPDATE and crl.height == 3
    c1 = sample.store.tx(sample.ids["c-1"])
    assert c1 is not None and c1.type is TxType.NOTARY_CONTENT and (c1.height, c1.index) == (1, 2)
    assert decode_payload(c1.envelope).body.data == b"contract text"  # type: ignore[union-attr]
    assert SUITE.hash(decode_payload(c1.envelope).encode()) == c1.txid
    assert sample.store.tx(b"\x00" * 32) is None


def test_records_by_business_id(sample: Sample) -> None:
    rows = sample.store.records_by_business_id("inv-1", 10)
    assert [r.txid for r in rows] == [sample.ids["inv-1"], sample.ids["inv-1b"]]
    assert [(r.height, r.index) for r in rows] == [(1, 0), (2, 0)]
    assert [r.business_time_ms for r in rows] == [100, 150]
    assert all(r.category == "invoice" and r.type is TxType.NOTARY_HASH for r in rows)
    page1 = sample.store.records_by_business_id("inv-1", 1)
    page2 = sample.store.records_by_business_id("inv-1", 1, after_seq=page1[0].seq)
    page3 = sample.store.records_by_business_id("inv-1", 1, after_seq=page2[0].seq)
    assert [page1[0].txid, page2[0].txid] == [r.txid for r in rows] and page3 == []
    assert sample.store.records_by_business_id("nope", 10) == []
    (l1,) = sample.store.records_by_business_id("l-1", 10)
    assert l1.type is TxType.NOTARY_LINK and l1.business_time_ms == 50


def test_records_by_category_time_range_and_paging(sample: Sample) -> None:
    store, ids = sample.store, sample.ids
    everything = store.records_by_category("invoice", 0, 10**15, 100)
    assert [r.txid for r in everything] == [ids[k] for k in (
        "l-1", "inv-1", "inv-1b", "inv-2", "inv-3", "inv-4", "after")]
    assert [r.business_time_ms for r in everything] == [50, 100, 150, 200, 200, 300, 400]
    # ties in business time are ordered by commit order
    assert everything[3].seq < everything[4].seq
    ranged = store.records_by_category("invoice", 150, 200, 100)
    assert [r.txid for r in ranged] == [ids["inv-1b"], ids["inv-2"], ids["inv-3"]]
    assert store.records_by_category("invoice", 201, 299, 100) == []
    assert [r.txid for r in store.records_by_category("contract", 0, 10**15, 10)] == [ids["c-1"]]
    # cursor paging, two rows at a time, over [100, 300]: the cursor is (time, seq)
    pages, after = [], None
    while True:
        page = store.records_by_category("invoice", 100, 300, 2, after=after)
        if not page:
            break
        pages.append([r.txid for r in page])
        after = (page[-1].business_time_ms, page[-1].seq)
    assert pages == [[ids["inv-1"], ids["inv-1b"]], [ids["inv-2"], ids["inv-3"]],
                     [ids["inv-4"]]]
    # a page boundary between two records of the same time loses neither
    first = store.records_by_category("invoice", 200, 200, 1)
    second = store.records_by_category("invoice", 200, 200, 1,
                                       after=(first[0].business_time_ms, first[0].seq))
    assert [first[0].txid, second[0].txid] == [ids["inv-2"], ids["inv-3"]]


def test_known_txids(sample: Sample) -> None:
    ids = list(sample.ids.values())
    unknown = [i.to_bytes(32, "big") for i in range(1200)]
    found = sample.store.known_txids(unknown[:600] + ids + unknown[600:])
    assert found == set(ids)  # includes the INVALID one: its id is spent
    assert sample.store.known_txids([]) == set()
    assert sample.store.known_txids(unknown) == set()


# -- execution -----------------------------------------------------------------------------


def test_execute_results_and_records(fresh_world: World) -> None:
    w = fresh_world
    txs = Admission(SUITE, w.config, lambda: NOW_MS).check
    a = txs(digest_tx(w.org1["alice"], "a", category="k", business_time_ms=5).envelope)
    b = txs(digest_tx(w.org2["admin"], "b").envelope)
    crl = txs(sign_tx(w.org1["admin"], CrlUpdate("org1", w.org1.ca.crl())).envelope)
    m = Membership(w.config)
    ex = executor.execute(SUITE, w.config, m, [a, b])
    assert ex.results == [VALID, VALID] and ex.new_config is None
    assert [(i, meta.business_id) for i, meta in ex.records] == [(0, "a"), (1, "b")]
    # a configuration transaction must be alone in its block
    ex = executor.execute(SUITE, w.config, m, [a, crl])
    assert ex.results == [VALID, Result(TxStatus.INVALID, "config_not_alone")]
    assert ex.new_config is None
    ex = executor.execute(SUITE, w.config, m, [crl])
    assert ex.results == [VALID] and ex.new_config is not None
    assert ex.new_config.sequence == 1 and ex.records == []
    # revoked under the configuration in force at execution
    w.org1.ca.revoke(_serial(w.org1["alice"].cert_der))
    cfg = w.config.with_org(w.org1.org_config(w.org1.ca.crl()))
    ex = executor.execute(SUITE, cfg, Membership(cfg), [a, b])
    assert ex.results == [Result(TxStatus.INVALID, "revoked_identity"), VALID]
    assert [i for i, _ in ex.records] == [1]
    # a stale CRL update executes INVALID and changes nothing
    ex = executor.execute(SUITE, cfg, Membership(cfg), [crl])
    assert ex.results == [Result(TxStatus.INVALID, "stale_crl")] and ex.new_config is None


def test_invalid_config_update_block_is_not_a_configuration_block(harness: Harness) -> None:
    w = harness.world
    crl = w.org1.ca.crl()
    # Both pass admission (each is newer than the CRL in force then); the second one
    # reaches execution after the first changed the configuration, and is refused there.
    first, second = harness.admit(sign_tx(w.org1["admin"], CrlUpdate("org1", crl)),
                                  sign_tx(w.org1["admin"], CrlUpdate("org1", crl)))
    harness.order([first])
    block, results = harness.order([second])
    assert results == [Result(TxStatus.INVALID, "stale_crl")]
    with pytest.raises(ConfigError) as refused:  # a third is refused at admission already
        harness.admit(sign_tx(w.org1["admin"], CrlUpdate("org1", crl)))
    assert refused.value.code == "stale_crl"
    assert block.header.config_height == 1 and not block.header.is_config
    assert not harness.store.block(2).is_config  # type: ignore[union-attr]
    assert harness.chain.config.sequence == 1
    assert verify_chain(harness.store, w.genesis, tail=None) == 2


# -- the chain object ----------------------------------------------------------------------


def test_new_chain_writes_genesis(harness: Harness) -> None:
    w = harness.world
    assert harness.store.height == 0
    assert harness.store.meta("genesis_hash") == w.genesis.hash
    assert harness.store.meta("chain_id") == CHAIN_ID.encode()
    assert harness.store.config_in_force() == (0, w.config)
    g = harness.store.tx(hashing.tx_id(SUITE, decode_payload(
        w.genesis.block.envelopes[0]).encode()))
    assert g is not None and g.type is TxType.CONFIG and g.height == 0
    assert harness.chain.next_height() == 1
    assert verify_chain(harness.store, w.genesis, tail=None) == 0


def test_chain_restarts_from_its_store(tmp_path: Path) -> None:
    w = make_world()
    h = Harness(tmp_path / "l.db", w)
    h.commit(digest_tx(w.org1["alice"], "one"))
    w.org1.ca.revoke(_serial(w.org2["alice"].cert_der))  # not an org1 cert: no effect
    h.commit(sign_tx(w.org1["admin"], CrlUpdate("org1", w.org1.ca.crl())))
    last_hash = h.chain.last_hash
    h.close()
    h2 = Harness(tmp_path / "l.db", w)
    assert h2.store.height == 2 and h2.chain.last_hash == last_hash
    assert h2.chain.config_height == 2 and h2.chain.config.sequence == 1
    # The last block changed the configuration: its certificate (which the next block
    # carries, and a replica checks) verifies under the configuration before it.
    assert h2.chain.cert_config.sequence == 0 == h2.store.previous_config().sequence
    assert h2.admission.config == h2.chain.config
    _, results = h2.commit(digest_tx(w.org2["alice"], "two"))
    assert results == [VALID]
    assert verify_chain(h2.store, w.genesis, tail=None) == 3
    h2.close()


def test_chain_refuses_a_store_of_another_chain(tmp_path: Path) -> None:
    w1, w2 = make_world(), make_world()
    Harness(tmp_path / "l.db", w1).close()
    store = LedgerStore(tmp_path / "l.db")
    try:
        with pytest.raises(ChainCorrupted, match="another chain"):
            Chain(store, w2.genesis, w2.validator.key)
    finally:
        store.close()


def test_store_refuses_out_of_order_commit(harness: Harness) -> None:
    s = digest_tx(harness.world.org1["alice"], "x")
    block, proposal = harness.solo_order(harness.admit(s), NOW_MS + 1)
    harness.chain.commit(block, proposal)
    with pytest.raises(ChainCorrupted):
        harness.chain.commit(block, proposal)
    assert harness.store.height == 1


def test_block_timestamps_never_go_backwards(harness: Harness) -> None:
    b1, _ = harness.order(harness.admit(digest_tx(harness.world.org1["alice"], "x")))
    block, _ = harness.solo_order([], b1.header.timestamp_ms - 10_000)
    assert block.header.timestamp_ms >= b1.header.timestamp_ms


def test_empty_block(harness: Harness) -> None:
    block, results = harness.order([])
    assert results == [] and block.header.tx_count == 0
    assert block.header.tx_root == SUITE.hash(b"")
    assert verify_chain(harness.store, harness.world.genesis, tail=None) == 1


def test_certificate_checks(harness: Harness) -> None:
    w = harness.world
    block, _ = harness.commit(digest_tx(w.org1["alice"], "x"))
    hd, cert = block.header, block.certificate
    h = hashing.block_hash(SUITE, block.header_bytes)
    verify_certificate(SUITE, w.config, hd, h, cert)
    other = w.org1["alice"].key
    bad_votes = [
        (),
        (Vote("validator0", other.sign(b"x")),),
        (Vote("validator9", cert.votes[0].signature),),
        (cert.votes[0], cert.votes[0]),
        (sign_vote(other, "validator0", CHAIN_ID, hd.height, 0, h),),
        (sign_vote(w.validator.key, "validator0", "other-chain", hd.height, 0, h),),
        (sign_vote(w.validator.key, "validator0", CHAIN_ID, hd.height, 1, h),),
    ]
    for votes in bad_votes:
        with pytest.raises(InvalidBlock):
            verify_certificate(SUITE, w.config, hd, h, Certificate(hd.height, 0, h, votes))
    with pytest.raises(InvalidBlock):
        verify_certificate(SUITE, w.config, hd, h, Certificate(hd.height + 1, 0, h, cert.votes))
    with pytest.raises(InvalidBlock):
        verify_certificate(SUITE, w.config, hd, bytes(32), cert)


def test_check_validator_identity(world: World) -> None:
    check_validator_identity(world.config, "validator0", world.validator.cert_der)
    with pytest.raises(ConfigError):
        check_validator_identity(world.config, "validator1", world.validator.cert_der)
    with pytest.raises(ConfigError):
        check_validator_identity(world.config, "validator0", world.org1["alice"].cert_der)


def test_copy_of_a_store_verifies(sample: Sample, tmp_path: Path) -> None:
    """The sample's database copied with the sqlite backup API is a complete chain."""
    import sqlite3
    dst = sqlite3.connect(tmp_path / "copy.db")
    src = sqlite3.connect(sample.store.path)
    src.backup(dst)
    src.close()
    dst.close()
    store = LedgerStore(tmp_path / "copy.db")
    try:
        assert verify_chain(store, sample.world.genesis, tail=None) == 5
        chain = Chain(store, sample.world.genesis, sample.world.validator.key)
        assert chain.config.sequence == 1
    finally:
        store.close()


def test_a_proposal_leaves_out_transactions_the_ledger_already_holds(harness: Harness) -> None:
    """A new leader's pool still holds, as pending, the transactions of a block another
    validator built until the event loop settles its commit; a proposal made on the commit
    thread before then must not carry them again (every validator refuses a replay)."""
    alice = harness.world.org1["alice"]
    a, b = harness.admit(digest_tx(alice, "in-both"), digest_tx(alice, "only-pending"))
    pool = TxPool(100, 1 << 20)
    pool.add(a)
    pool.add(b)
    support = ReplicaNodeSupport(harness.chain, pool, harness.admission)
    harness.order([a])  # built elsewhere and committed here; the pool is not settled yet
    p = support.propose(NOW_MS + 10, "validator0")
    assert p is not None and [t.id for t in Chain.batch_of(p)] == [b.id]
    assert not pool.contains(a.id) and pool.inflight == 1
    harness.order([b])
    pool.add(a)  # (back in the pool by whatever route)
    assert support.propose(NOW_MS + 12, "validator0") is None
    assert not pool.contains(a.id)
