"""The ``Suite`` protocol and the registry of suites.

A suite fixes three things a chain must agree on: the hash (ids, Merkle trees,
fingerprints), the signature scheme with its exact byte format, and the key
agreement used to wrap envelope keys. Public keys travel as bytes in the
suite's own encoding; ``load_public_key`` turns them into a handle that callers
cache, because parsing a point costs as much as a tenth of a verification.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class CryptoError(Exception):
    """A key, signature or ciphertext could not be used (never a bug in the caller)."""


@runtime_checkable
class PublicKey(Protocol):
    def public_bytes(self) -> bytes:
        """The suite's encoding of the key (X9.62 uncompressed point for EC suites)."""
        ...


@runtime_checkable
class SigningKey(Protocol):
    suite_name: str

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (the suite hashes it); returns the suite's signature bytes."""
        ...

    def public_key(self) -> PublicKey: ...

    def to_pem(self, passphrase: bytes | None) -> bytes:
        """PKCS#8 PEM, encrypted with ``passphrase`` when given."""
        ...


class Suite(Protocol):
    name: str
    hash_size: int
    signature_size: int

    def hash(self, data: bytes) -> bytes: ...

    def generate_key(self) -> SigningKey: ...

    def load_private_key(self, pem: bytes, passphrase: bytes | None) -> SigningKey: ...

    def load_public_key(self, data: bytes) -> PublicKey: ...

    def public_key_from_spki(self, spki_der: bytes) -> PublicKey:
        """From a DER SubjectPublicKeyInfo, as a certificate carries it."""
        ...

    def verify(self, key: PublicKey, data: bytes, signature: bytes) -> bool:
        """True only for a valid signature in canonical form (e.g. low-S)."""
        ...

    def agree(self, key: SigningKey, peer: PublicKey) -> bytes:
        """Key agreement (ECDH) between our private key and a peer's public key."""
        ...


_REGISTRY: dict[str, Suite] = {}


def register(suite: Suite) -> None:
    _REGISTRY[suite.name] = suite


def get_suite(name: str) -> Suite:
    if not _REGISTRY:
        from consortia.crypto import p256  # noqa: F401  (registers the default suite)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CryptoError(f"unknown crypto suite {name!r}; known: {sorted(_REGISTRY)}") from None


def suites() -> list[str]:
    get_suite("p256-sha256")
    return sorted(_REGISTRY)
