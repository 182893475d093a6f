"""Digital envelopes: data encrypted once, its key wrapped for each recipient (ECIES).

For each recipient an ephemeral key pair is generated; ECDH with the
recipient's public key, through HKDF-SHA256 bound to the ephemeral key and the
recipient's fingerprint, yields a key-encryption key that wraps the data key
with AES-256-GCM. Only the holder of a recipient's private key can recompute
that KEK; everyone else sees ciphertext and public values.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consortia.crypto import aead
from consortia.crypto.suite import CryptoError, PublicKey, SigningKey, Suite

SCHEME = "ecies-hkdf-sha256-aes-256-gcm"
_INFO = b"consortia/envelope/1"


@dataclass(frozen=True, slots=True)
class Wrapped:
    recipient: bytes
    ephemeral_public_key: bytes
    nonce: bytes
    wrapped_key: bytes


@dataclass(frozen=True, slots=True)
class Sealed:
    scheme: str
    nonce: bytes
    ciphertext: bytes
    recipients: tuple[Wrapped, ...]


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral,
                info=_INFO + recipient).derive(shared)


def seal(suite: Suite, plaintext: bytes, recipients: list[tuple[bytes, PublicKey]],
         aad: bytes = b"") -> Sealed:
    """Encrypt ``plaintext`` for ``recipients`` given as (fingerprint, public key)."""
    if not recipients:
        raise CryptoError("an envelope needs at least one recipient")
    data_key = aead.new_key()
    nonce, ciphertext = aead.encrypt(data_key, plaintext, aad)
    wrapped = []
    for fingerprint, public in recipients:
        eph = suite.generate_key()
        eph_pub = eph.public_key().public_bytes()
        kek = _kek(suite.agree(eph, public), eph_pub, fingerprint)
        wnonce, wkey = aead.encrypt(kek, data_key, fingerprint)
        wrapped.append(Wrapped(fingerprint, eph_pub, wnonce, wkey))
    return Sealed(SCHEME, nonce, ciphertext, tuple(wrapped))


def open_sealed(suite: Suite, sealed: Sealed, fingerprint: bytes, key: SigningKey,
                aad: bytes = b"") -> bytes:
    """Decrypt as the recipient whose certificate fingerprint is ``fingerprint``."""
    if sealed.scheme != SCHEME:
        raise CryptoError(f"unsupported envelope scheme {sealed.scheme!r}")
    for w in sealed.recipients:
        if w.recipient == fingerprint:
            eph = suite.load_public_key(w.ephemeral_public_key)
            kek = _kek(suite.agree(key, eph), w.ephemeral_public_key, fingerprint)
            data_key = aead.decrypt(kek, w.nonce, w.wrapped_key, fingerprint)
            return aead.decrypt(data_key, sealed.nonce, sealed.ciphertext, aad)
    raise CryptoError("this identity is not a recipient of the envelope")
