"""Admission checks with a fixed clock (txpool/admission.py) and the bounded pool with its
batch cutter (txpool/pool.py)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from consortia.sdk import notary
from consortia.sdk.tx import sign
from consortia.txpool.admission import Admission
from consortia.txpool.pool import TxPool
from consortia.types.config import BlockLimits, OrgConfig
from consortia.types.errors import (
    BadSignature,
    Duplicate,
    Malformed,
    PoolFull,
    StaleTimestamp,
    TooLarge,
    Unauthorized,
    WrongChain,
)
from consortia.types.tx import (
    ConfigBody,
    CrlUpdate,
    Envelope,
    HashRecord,
    NotaryMeta,
    Payload,
    Tx,
    TxType,
)
from tests.unit.conftest import CHAIN_ID, NOW_MS, SUITE, World, digest_tx, make_org, sign_tx

WINDOW = BlockLimits().tx_window_ms


@pytest.fixture
def admission(world: World) -> Admission:
    return Admission(SUITE, world.config, lambda: NOW_MS)


# -- admission -----------------------------------------------------------------------------


def test_valid_transaction_is_admitted(world: World, admission: Admission) -> None:
    s = digest_tx(world.org1["alice"], "inv-1")
    tx = admission.check(s.envelope)
    assert tx.id == hashlib.sha256(Envelope.decode(s.envelope).payload).digest() == s.id
    assert tx.raw == s.envelope
    assert tx.payload == s.payload
    assert tx.envelope.signer == world.org1["alice"].cert_der
    # every writer role of every member organization
    for ident in (world.org1["admin"], world.org2["alice"], world.org2["admin"]):
        assert admission.check(digest_tx(ident, "x").envelope).payload.body.meta.business_id \
            == "x"


def test_every_notary_body_type_is_admitted(world: World, admission: Admission) -> None:
    alice, bob = world.org1["alice"], world.org2["alice"]
    from consortia.sdk.identity import Recipient
    bodies = [
        notary.content("c", b"hello", media_type="text/plain", business_time_ms=1),
        notary.digest("d", b"doc", algorithm="sha512", business_time_ms=1),
        notary.link("l", "https://example.com/x", bytes(32), business_time_ms=1),
        notary.ciphertext("e", b"secret", business_time_ms=1)[0],
        notary.privacy("p", b"shared", [Recipient.from_cert(bob.cert_der)],
                       business_time_ms=1),
    ]
    for body in bodies:
        tx = admission.check(sign_tx(alice, body).envelope)
        assert tx.payload.body == body


def test_wrong_chain(world: World, admission: Admission) -> None:
    s = digest_tx(world.org1["alice"], "inv-1", chain_id="other-chain")
    with pytest.raises(WrongChain) as e:
        admission.check(s.envelope)
    assert e.value.code == "wrong_chain"


@pytest.mark.parametrize(("offset", "ok"), [
    (0, True), (WINDOW, True), (-WINDOW, True), (WINDOW + 1, False), (-WINDOW - 1, False),
    (86_400_000, False), (-86_400_000, False)])
def test_timestamp_window(world: World, offset: int, ok: bool) -> None:
    # the node clock runs one window ahead so every timestamp tried is inside the
    # certificates' validity (they start a few minutes before NOW_MS)
    clock = NOW_MS + WINDOW
    admission = Admission(SUITE, world.config, lambda: clock)
    s = digest_tx(world.org1["alice"], "t", timestamp_ms=clock + offset)
    if ok:
        assert admission.check(s.envelope).payload.timestamp_ms == clock + offset
    else:
        with pytest.raises(StaleTimestamp) as e:
            admission.check(s.envelope)
        assert e.value.code == "stale_timestamp"


def test_clock_is_read_at_each_check(world: World) -> None:
    now = [NOW_MS]
    adm = Admission(SUITE, world.config, lambda: now[0])
    s = digest_tx(world.org1["alice"], "t")
    adm.check(s.envelope)
    now[0] = NOW_MS + WINDOW + 1
    with pytest.raises(StaleTimestamp):
        adm.check(s.envelope)


def test_full_configuration_transaction_is_not_admitted(world: World,
                                                        admission: Admission) -> None:
    s = sign_tx(world.org1["admin"], ConfigBody(world.config.encode()))
    with pytest.raises(Malformed) as e:
        admission.check(s.envelope)
    assert e.value.code == "config_not_allowed"


def test_crl_update_is_admitted_from_the_org_admin_only(fresh_world: World) -> None:
    w = fresh_world
    adm = Admission(SUITE, w.config, lambda: NOW_MS)
    crl = w.org1.ca.crl()
    tx = adm.check(sign_tx(w.org1["admin"], CrlUpdate("org1", crl)).envelope)
    assert tx.payload.type is TxType.CRL_UPDATE
    with pytest.raises(Unauthorized) as e:
        adm.check(sign_tx(w.org1["alice"], CrlUpdate("org1", crl)).envelope)
    assert e.value.code == "wrong_role"


@pytest.mark.parametrize("position", [0, 13, 31, 32, 50, 63])
def test_bad_signature(world: World, admission: Admission, position: int) -> None:
    s = digest_tx(world.org1["alice"], "inv-1")
    env = Envelope.decode(s.envelope)
    sig = bytearray(env.signature)
    sig[position] ^= 0x01
    bad = dataclasses.replace(env, signature=bytes(sig)).encode()
    with pytest.raises(BadSignature) as e:
        admission.check(bad)
    assert e.value.code == "bad_signature"


def test_signature_must_cover_the_payload(world: World, admission: Admission) -> None:
    a = Envelope.decode(digest_tx(world.org1["alice"], "a").envelope)
    b = Envelope.decode(digest_tx(world.org1["alice"], "b").envelope)
    with pytest.raises(BadSignature):
        admission.check(Envelope(a.payload, a.signer, b.signature).encode())
    # a valid signature presented under someone else's certificate
    with pytest.raises(BadSignature):
        admission.check(Envelope(a.payload, world.org1["bob"].cert_der, a.signature).encode())


def test_signer_identity_checks(world: World, admission: Admission) -> None:
    outsider = make_org("org3")
    with pytest.raises(Unauthorized) as e:
        admission.check(digest_tx(outsider["alice"], "x").envelope)
    assert e.value.code == "unknown_identity"
    with pytest.raises(Unauthorized) as e:
        admission.check(digest_tx(world.org1["peer0"], "x").envelope)
    assert e.value.code == "wrong_role"


def test_oversized_transaction_is_too_large(world: World) -> None:
    limits = dataclasses.replace(BlockLimits(), max_tx_bytes=4096)
    adm = Admission(SUITE, dataclasses.replace(world.config, limits=limits), lambda: NOW_MS)
    small = sign_tx(world.org1["alice"], notary.content("c", b"x" * 100, business_time_ms=1))
    assert adm.check(small.envelope)
    big = sign_tx(world.org1["alice"], notary.content("c", b"x" * 4096, business_time_ms=1))
    assert len(big.envelope) > 4096
    with pytest.raises(TooLarge) as e:
        adm.check(big.envelope)
    assert e.value.code == "too_large"
    with pytest.raises(TooLarge):  # the size is checked before anything is decoded
        adm.check(b"\xc1" * 4097)


def test_undecodable_input_is_malformed(admission: Admission, world: World) -> None:
    s = digest_tx(world.org1["alice"], "x")
    for raw in (b"", b"\xc1", s.envelope + b"\x00", s.envelope[:-1]):
        with pytest.raises(Malformed):
            admission.check(raw)


def test_reconfigure_applies_revocation(fresh_world: World) -> None:
    w = fresh_world
    adm = Admission(SUITE, w.config, lambda: NOW_MS)
    s = digest_tx(w.org1["bob"], "x")
    adm.check(s.envelope)
    from cryptography import x509
    w.org1.ca.revoke(x509.load_der_x509_certificate(w.org1["bob"].cert_der).serial_number)
    adm.reconfigure(w.config.with_org(OrgConfig("org1", w.org1.ca.cert_der, w.org1.ca.crl())))
    assert adm.config.sequence == 1
    with pytest.raises(Unauthorized) as e:
        adm.check(s.envelope)
    assert e.value.code == "revoked_identity"
    adm.check(digest_tx(w.org1["alice"], "x").envelope)


# -- the pool ------------------------------------------------------------------------------

_META = NotaryMeta("b", "", 0)


def fake_tx(n: int, size: int = 100, tx_type: TxType = TxType.NOTARY_HASH) -> Tx:
    body = (CrlUpdate("org1", b"crl") if tx_type is TxType.CRL_UPDATE
            else HashRecord(_META, "sha256", bytes(32)))
    payload = Payload(CHAIN_ID, tx_type, n.to_bytes(16, "big"), NOW_MS, body)
    return Tx(hashlib.sha256(n.to_bytes(8, "big")).digest(),  # type: ignore[arg-type]
              Envelope(b"p", b"s", b"x"), bytes(size), payload)


def test_pool_is_bounded_in_count() -> None:
    pool = TxPool(max_txs=3, max_bytes=10_000)
    for i in range(3):
        pool.add(fake_tx(i))
    with pytest.raises(PoolFull) as e:
        pool.add(fake_tx(3))
    assert e.value.code == "pool_full" and e.value.status == 429
    assert len(pool) == 3 and pool.size_bytes == 300


def test_pool_is_bounded_in_bytes() -> None:
    pool = TxPool(max_txs=100, max_bytes=250)
    pool.add(fake_tx(0, 100))
    pool.add(fake_tx(1, 150))
    assert pool.size_bytes == 250
    with pytest.raises(PoolFull):
        pool.add(fake_tx(2, 1))
    pool2 = TxPool(max_txs=100, max_bytes=250)
    with pytest.raises(PoolFull):
        pool2.add(fake_tx(0, 251))
    assert len(pool2) == 0 and pool2.size_bytes == 0


def test_duplicates_are_refused_until_done() -> None:
    pool = TxPool(10, 10_000)
    tx = fake_tx(1)
    pool.add(tx)
    with pytest.raises(Duplicate) as e:
        pool.add(tx)
    assert e.value.code == "duplicate_transaction"
    assert pool.take_batch(10, 10_000) == [tx]
    assert pool.contains(tx.id) and pool.inflight == 1 and len(pool) == 0
    with pytest.raises(Duplicate):  # still known while its block is being committed
        pool.add(tx)
    pool.done([tx.id])
    assert not pool.contains(tx.id) and pool.inflight == 0
    pool.add(tx)
    assert len(pool) == 1


def test_take_batch_respects_max_txs_and_order() -> None:
    pool = TxPool(100, 100_000)
    txs = [fake_tx(i) for i in range(7)]
    for t in txs:
        pool.add(t)
    assert pool.take_batch(3, 100_000) == txs[:3]
    assert pool.take_batch(3, 100_000) == txs[3:6]
    assert pool.take_batch(3, 100_000) == txs[6:]
    assert pool.take_batch(3, 100_000) == []
    assert pool.size_bytes == 0 and pool.inflight == 7


def test_take_batch_respects_max_bytes() -> None:
    pool = TxPool(100, 100_000)
    txs = [fake_tx(i, 100) for i in range(5)]
    for t in txs:
        pool.add(t)
    assert pool.take_batch(100, 250) == txs[:2]
    assert pool.take_batch(100, 300) == txs[2:5]
    big = fake_tx(9, 1000)
    pool.add(big)
    # a single transaction larger than the block budget still leaves, alone
    assert pool.take_batch(100, 250) == [big]


def test_configuration_transaction_is_cut_alone() -> None:
    pool = TxPool(100, 100_000)
    a, b = fake_tx(1), fake_tx(2)
    crl = fake_tx(3, tx_type=TxType.CRL_UPDATE)
    c = fake_tx(4)
    for t in (a, b, crl, c):
        pool.add(t)
    assert pool.take_batch(100, 100_000) == [a, b]
    assert pool.take_batch(100, 100_000) == [crl]
    assert pool.take_batch(100, 100_000) == [c]
    crl2, crl3 = fake_tx(5, tx_type=TxType.CRL_UPDATE), fake_tx(6, tx_type=TxType.CRL_UPDATE)
    pool.add(crl2)
    pool.add(crl3)
    assert pool.take_batch(100, 100_000) == [crl2]
    assert pool.take_batch(100, 100_000) == [crl3]


def test_done_releases_ids_and_frees_capacity() -> None:
    pool = TxPool(2, 10_000)
    t1, t2, t3 = fake_tx(1), fake_tx(2), fake_tx(3)
    pool.add(t1)
    pool.add(t2)
    batch = pool.take_batch(2, 10_000)
    pool.add(t3)  # the queue has room again once a batch is cut
    pool.done([t.id for t in batch])
    assert not pool.contains(t1.id) and not pool.contains(t2.id) and pool.contains(t3.id)
    pool.done([b"unknown"])  # harmless


def test_admitted_transactions_flow_through_the_pool(world: World,
                                                     admission: Admission) -> None:
    pool = TxPool(10, 1_000_000)
    signed = [digest_tx(world.org1["alice"], f"r{i}") for i in range(3)]
    for s in signed:
        pool.add(admission.check(s.envelope))
    with pytest.raises(Duplicate):
        pool.add(admission.check(signed[0].envelope))
    assert [t.id for t in pool.take_batch(10, 1_000_000)] == [s.id for s in signed]
    # the same body signed again is a new transaction (fresh nonce)
    again = sign(world.org1["alice"], CHAIN_ID, signed[0].payload.body, timestamp_ms=NOW_MS)
    assert again.id != signed[0].id
    pool.add(admission.check(again.envelope))
