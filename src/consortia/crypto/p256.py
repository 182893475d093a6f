"""The default suite ``p256-sha256``: ECDSA over NIST P-256 with SHA-256.

Signatures are 64 bytes, ``r || s`` big-endian, with ``s <= n/2`` (low-S).
A high-S signature is the same signature malleated; accepting both would give
one transaction two valid encodings, so it is refused (DESIGN §5).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from consortia.crypto.suite import CryptoError, PublicKey, SigningKey, register

_CURVE = ec.SECP256R1()
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_N = _N // 2
_ECDSA = ec.ECDSA(hashes.SHA256())


class P256PublicKey:
    __slots__ = ("_bytes", "native")

    def __init__(self, native: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(native.curve, ec.SECP256R1):
            raise CryptoError(f"expected a P-256 key, got {native.curve.name}")
        self.native = native
        self._bytes = native.public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)

    def public_bytes(self) -> bytes:
        return self._bytes


class P256SigningKey:
    suite_name = "p256-sha256"

    def __init__(self, native: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(native.curve, ec.SECP256R1):
            raise CryptoError(f"expected a P-256 key, got {native.curve.name}")
        self.native = native
        self._public = P256PublicKey(native.public_key())

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self.native.sign(data, _ECDSA))
        if s > _HALF_N:
            s = _N - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def public_key(self) -> PublicKey:
        return self._public

    def to_pem(self, passphrase: bytes | None) -> bytes:
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase
            else serialization.NoEncryption()
        )
        return self.native.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8, enc)


class P256Sha256:
    name = "p256-sha256"
    hash_size = 32
    signature_size = 64

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def generate_key(self) -> SigningKey:
        return P256SigningKey(ec.generate_private_key(_CURVE))

    def load_private_key(self, pem: bytes, passphrase: bytes | None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except (ValueError, TypeError) as exc:
            raise CryptoError(f"cannot load private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CryptoError("not an EC private key")
        return P256SigningKey(key)

    def load_public_key(self, data: bytes) -> PublicKey:
        try:
            return P256PublicKey(ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, data))
        except ValueError as exc:
            raise CryptoError(f"invalid P-256 public key: {exc}") from exc

    def public_key_from_spki(self, spki_der: bytes) -> PublicKey:
        try:
            key = serialization.load_der_public_key(spki_der)
        except ValueError as exc:
            raise CryptoError(f"invalid public key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise CryptoError("not an EC public key")
        return P256PublicKey(key)

    def verify(self, key: PublicKey, data: bytes, signature: bytes) -> bool:
        if len(signature) != 64 or not isinstance(key, P256PublicKey):
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < _N and 0 < s <= _HALF_N):
            return False
        try:
            key.native.verify(encode_dss_signature(r, s), data, _ECDSA)
        except InvalidSignature:
            return False
        return True

    def agree(self, key: SigningKey, peer: PublicKey) -> bytes:
        if not isinstance(key, P256SigningKey) or not isinstance(peer, P256PublicKey):
            raise CryptoError("key agreement needs two P-256 keys")
        return key.native.exchange(ec.ECDH(), peer.native)


SUITE = P256Sha256()
register(SUITE)


def spki_of(cert_public_key: ec.EllipticCurvePublicKey) -> bytes:
    return cert_public_key.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)


def native_signing_key(key: SigningKey) -> ec.EllipticCurvePrivateKey:
    """The ``cryptography`` key behind a P-256 signing key (for X.509 issuance)."""
    if not isinstance(key, P256SigningKey):
        raise CryptoError("not a P-256 signing key")
    return key.native
