"""The p256-sha256 suite, AES-256-GCM and digital envelopes (crypto/), plus the SDK's
ciphertext and privacy record helpers built on them (sdk/notary.py)."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from consortia.crypto import CryptoError, aead, envelope, get_suite, suites
from consortia.crypto.p256 import _HALF_N, _N, P256Sha256
from consortia.sdk import notary
from consortia.sdk.identity import Identity, Recipient
from consortia.types.tx import Payload
from tests.unit.conftest import World

SUITE: P256Sha256 = get_suite("p256-sha256")  # type: ignore[assignment]
MSG = b"consortia signs bytes"


def _split(sig: bytes) -> tuple[int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")


def _join(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.fixture(scope="module")
def key():
    return SUITE.generate_key()


# -- signatures ----------------------------------------------------------------------------


def test_suite_registry() -> None:
    assert "p256-sha256" in suites()
    assert get_suite("p256-sha256") is SUITE
    with pytest.raises(CryptoError, match="unknown crypto suite"):
        get_suite("sm2-sm3")
    assert SUITE.hash(b"abc").hex().startswith("ba7816bf")
    assert SUITE.hash_size == 32 and SUITE.signature_size == 64


def test_sign_verify_round_trip(key) -> None:
    sig = key.sign(MSG)
    assert len(sig) == 64
    assert SUITE.verify(key.public_key(), MSG, sig)
    assert SUITE.verify(SUITE.load_public_key(key.public_key().public_bytes()), MSG, sig)


def test_high_s_signature_is_rejected(key) -> None:
    sig = key.sign(MSG)
    r, s = _split(sig)
    high = _join(r, _N - s)
    assert _N - s > _HALF_N
    # the malleated signature is mathematically valid ECDSA...
    key.public_key().native.verify(encode_dss_signature(r, _N - s), MSG, ec.ECDSA(hashes.SHA256()))
    # ...and the suite refuses it as the second spelling of the same signature
    assert not SUITE.verify(key.public_key(), MSG, high)


def test_signatures_are_always_low_s(key) -> None:
    for i in range(200):
        data = MSG + i.to_bytes(2, "big")
        sig = key.sign(data)
        r, s = _split(sig)
        assert 0 < r < _N
        assert 0 < s <= _HALF_N
        assert SUITE.verify(key.public_key(), data, sig)


def test_malformed_and_wrong_signatures_are_rejected(key) -> None:
    sig = key.sign(MSG)
    r, s = _split(sig)
    pub = key.public_key()
    bad = [
        b"", sig[:63], sig + b"\x00", b"\x00" + sig,
        _join(0, s), _join(r, 0), _join(0, 0),
        _join(r, _N), _join(r, _N - 1),  # s = n, and s = n-1 (high)
        _join(_N, s), _join(r, _HALF_N + 1),
        encode_dss_signature(r, s),  # DER is not this suite's format
        bytes(64), b"\xff" * 64,
    ]
    for b in bad:
        assert not SUITE.verify(pub, MSG, b), b.hex()
    assert not SUITE.verify(pub, MSG + b"!", sig)
    assert not SUITE.verify(pub, b"", sig)
    flipped = bytearray(sig)
    flipped[10] ^= 1
    assert not SUITE.verify(pub, MSG, bytes(flipped))
    other = SUITE.generate_key()
    assert not SUITE.verify(other.public_key(), MSG, sig)


def test_verify_refuses_foreign_key_objects(key) -> None:
    class FakeKey:
        def public_bytes(self) -> bytes:
            return key.public_key().public_bytes()

    assert not SUITE.verify(FakeKey(), MSG, key.sign(MSG))  # type: ignore[arg-type]


def test_key_loading(key) -> None:
    pem = key.to_pem(b"pw")
    assert b"ENCRYPTED" in pem
    loaded = SUITE.load_private_key(pem, b"pw")
    assert loaded.public_key().public_bytes() == key.public_key().public_bytes()
    with pytest.raises(CryptoError):
        SUITE.load_private_key(pem, b"wrong")
    with pytest.raises(CryptoError):
        SUITE.load_private_key(pem, None)
    assert SUITE.load_private_key(key.to_pem(None), None).public_key().public_bytes() == \
        key.public_key().public_bytes()
    with pytest.raises(CryptoError):
        SUITE.load_public_key(b"\x04" + bytes(64))
    with pytest.raises(CryptoError):
        SUITE.load_public_key(b"")
    point = key.public_key().public_bytes()
    assert len(point) == 65 and point[0] == 4


def test_key_agreement_is_symmetric(key) -> None:
    other = SUITE.generate_key()
    assert SUITE.agree(key, other.public_key()) == SUITE.agree(other, key.public_key())
    assert SUITE.agree(key, other.public_key()) != SUITE.agree(key, SUITE.generate_key()
                                                               .public_key())


# -- AES-256-GCM ---------------------------------------------------------------------------


def test_aead_round_trip_and_failures() -> None:
    k = aead.new_key()
    assert len(k) == 32
    nonce, ct = aead.encrypt(k, b"secret", b"aad")
    assert len(nonce) == 12 and len(ct) == len(b"secret") + 16
    assert aead.decrypt(k, nonce, ct, b"aad") == b"secret"
    n2, ct2 = aead.encrypt(k, b"secret", b"aad")
    assert n2 != nonce and ct2 != ct  # fresh nonce each time
    with pytest.raises(CryptoError):
        aead.decrypt(aead.new_key(), nonce, ct, b"aad")
    with pytest.raises(CryptoError):
        aead.decrypt(k, nonce, ct, b"other aad")
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            aead.decrypt(k, nonce, bytes(bad), b"aad")
    with pytest.raises(CryptoError):
        aead.decrypt(k, bytes([nonce[0] ^ 1]) + nonce[1:], ct, b"aad")
    with pytest.raises(CryptoError):
        aead.decrypt(k, nonce, ct[:-1], b"aad")
    with pytest.raises(CryptoError):
        aead.encrypt(bytes(16), b"x")
    with pytest.raises(CryptoError):
        aead.decrypt(bytes(16), nonce, ct)
    assert aead.decrypt(k, *aead.encrypt(k, b"")) == b""


# -- digital envelopes ---------------------------------------------------------------------


def test_envelope_for_two_of_three(world: World) -> None:
    a, b, c = world.org1["alice"], world.org2["alice"], world.org1["bob"]
    sealed = envelope.seal(SUITE, b"for a and b", [
        (a.fingerprint, a.key.public_key()), (b.fingerprint, b.key.public_key())], b"ctx")
    assert sealed.scheme == envelope.SCHEME
    assert [w.recipient for w in sealed.recipients] == [a.fingerprint, b.fingerprint]
    assert b"for a and b" not in sealed.ciphertext
    assert envelope.open_sealed(SUITE, sealed, a.fingerprint, a.key, b"ctx") == b"for a and b"
    assert envelope.open_sealed(SUITE, sealed, b.fingerprint, b.key, b"ctx") == b"for a and b"
    with pytest.raises(CryptoError, match="not a recipient"):
        envelope.open_sealed(SUITE, sealed, c.fingerprint, c.key, b"ctx")
    # the third identity claiming a recipient's fingerprint still lacks the private key
    with pytest.raises(CryptoError):
        envelope.open_sealed(SUITE, sealed, a.fingerprint, c.key, b"ctx")
    with pytest.raises(CryptoError):
        envelope.open_sealed(SUITE, sealed, a.fingerprint, a.key, b"other context")


def test_envelope_tampering_fails(world: World) -> None:
    a, b = world.org1["alice"], world.org2["alice"]
    sealed = envelope.seal(SUITE, b"payload", [(a.fingerprint, a.key.public_key()),
                                              (b.fingerprint, b.key.public_key())])
    w0 = sealed.recipients[0]
    for field, value in [
        ("wrapped_key", bytes([w0.wrapped_key[0] ^ 1]) + w0.wrapped_key[1:]),
        ("wrapped_key", w0.wrapped_key[:-1] + bytes([w0.wrapped_key[-1] ^ 1])),
        ("nonce", bytes([w0.nonce[0] ^ 1]) + w0.nonce[1:]),
        ("ephemeral_public_key", sealed.recipients[1].ephemeral_public_key),
    ]:
        bad = dataclasses.replace(sealed, recipients=(dataclasses.replace(w0, **{field: value}),
                                                      sealed.recipients[1]))
        with pytest.raises(CryptoError):
            envelope.open_sealed(SUITE, bad, a.fingerprint, a.key)
        # the other recipient is unaffected
        assert envelope.open_sealed(SUITE, bad, b.fingerprint, b.key) == b"payload"
    bad_ct = dataclasses.replace(sealed, ciphertext=bytes([sealed.ciphertext[0] ^ 1])
                                 + sealed.ciphertext[1:])
    with pytest.raises(CryptoError):
        envelope.open_sealed(SUITE, bad_ct, a.fingerprint, a.key)
    with pytest.raises(CryptoError, match="scheme"):
        envelope.open_sealed(SUITE, dataclasses.replace(sealed, scheme="rot13"),
                             a.fingerprint, a.key)
    # a wrapped key re-labelled for another recipient does not open (fingerprint is bound)
    relabelled = dataclasses.replace(sealed, recipients=(
        dataclasses.replace(w0, recipient=b.fingerprint),))
    with pytest.raises(CryptoError):
        envelope.open_sealed(SUITE, relabelled, b.fingerprint, b.key)
    with pytest.raises(CryptoError):
        envelope.seal(SUITE, b"x", [])


def test_sdk_privacy_round_trip_through_the_wire(world: World) -> None:
    a, b, c = world.org1["alice"], world.org2["alice"], world.org1["bob"]
    recipients = [Recipient.from_cert(a.cert_der), Recipient.from_cert(b.cert_der)]
    assert recipients[0].fingerprint == a.fingerprint
    record = notary.privacy("deal-7", b"terms", recipients, category="deal",
                            business_time_ms=42)
    assert record.meta.business_id == "deal-7" and record.meta.business_time_ms == 42
    # through the canonical codec, as it is stored on chain
    payload = Payload("dev", 14, bytes(16), 1, record)  # type: ignore[arg-type]
    wire = Payload.decode(payload.encode()).body
    assert wire == record
    assert notary.open_privacy(wire, a) == b"terms"  # type: ignore[arg-type]
    assert notary.open_privacy(wire, b) == b"terms"  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        notary.open_privacy(wire, c)  # type: ignore[arg-type]
    # the business id is authenticated: moving the envelope to another record fails
    moved = dataclasses.replace(record, meta=dataclasses.replace(record.meta,
                                                                 business_id="deal-8"))
    with pytest.raises(CryptoError):
        notary.open_privacy(moved, a)


def test_recipient_from_pem_and_der(world: World) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    a = world.org1["alice"]
    pem = x509.load_der_x509_certificate(a.cert_der).public_bytes(serialization.Encoding.PEM)
    r_pem, r_der = Recipient.from_cert(pem), Recipient.from_cert(a.cert_der)
    assert r_pem.cert_der == r_der.cert_der == a.cert_der
    assert r_pem.fingerprint == r_der.fingerprint == a.fingerprint
    assert r_pem.public_key.public_bytes() == a.key.public_key().public_bytes()


def test_sdk_ciphertext_round_trip() -> None:
    record, k = notary.ciphertext("file-1", b"confidential", key_id="k1", business_time_ms=7)
    assert record.algorithm == "aes-256-gcm" and record.key_id == "k1"
    assert b"confidential" not in record.ciphertext
    assert notary.decrypt_ciphertext(record, k) == b"confidential"
    with pytest.raises(CryptoError):
        notary.decrypt_ciphertext(record, aead.new_key())
    tampered = dataclasses.replace(record, ciphertext=bytes([record.ciphertext[0] ^ 1])
                                   + record.ciphertext[1:])
    with pytest.raises(CryptoError):
        notary.decrypt_ciphertext(tampered, k)
    rebound = dataclasses.replace(record, meta=dataclasses.replace(record.meta,
                                                                   business_id="file-2"))
    with pytest.raises(CryptoError):
        notary.decrypt_ciphertext(rebound, k)
    fixed_key = bytes(range(32))
    r2, k2 = notary.ciphertext("file-1", b"x", key=fixed_key)
    assert k2 == fixed_key and notary.decrypt_ciphertext(r2, fixed_key) == b"x"


def test_identity_properties(world: World) -> None:
    a: Identity = world.org2["alice"]
    assert (a.org_id, a.name, a.role) == ("org2", "alice", "client")
    assert a.fingerprint == SUITE.hash(a.cert_der)
