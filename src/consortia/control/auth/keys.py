"""Issuing access keys, and keeping their secrets — and other secrets of the control
plane — sealed at rest.

HMAC verification needs the secret itself on the server (a hash of it would not do), so
the control plane stores each secret encrypted with AES-256-GCM under a server master
key, bound to its access key id, and decrypts it only to verify a request. The plain
secret is returned once, when the key is issued, and never stored. The same box seals a
member CA's private key (``seal_bytes(MEMBER_CA_KEY, member_id, pem)``).

Sealed format (bytes), version 1::

    0x01 | master key id (8 bytes) | GCM nonce (12 bytes) | ciphertext || tag (16 bytes)

AAD = the first 9 bytes + ``b"consortia/" + domain + b"/1\\x00"`` + the binding (UTF-8):
the domain says what kind of secret it is (``access-key-secret``, ``member-ca-key``), the
binding which row owns it (the access key id, the member id). A sealed value copied onto
another row, or into a column holding another kind of secret, does not open.
The master key id is ``HMAC-SHA256(master key, "consortia/master-key-id")[:8]``: it says
which master key sealed a secret, so keys can rotate (``SecretBox(new, previous=[old])``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from consortia.crypto import aead
from consortia.crypto.suite import CryptoError
from consortia.sdk.signing import Credentials

ACCESS_KEY_ID_PREFIX = "CK"
_ID_BYTES = 10       # 80 random bits: ids are public, they only need to be unique
_SECRET_BYTES = 32   # 256 random bits
_VERSION = b"\x01"
_KEY_ID_LEN = 8
_MIN_DISTINCT_BYTES = 16
_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz-")

ACCESS_KEY_SECRET = "access-key-secret"  # noqa: S105 - a domain name, not a secret
"""Domain of access-key secrets, bound to the access key id."""
MEMBER_CA_KEY = "member-ca-key"
"""Domain of a member CA's private key (PKCS#8 PEM), bound to the member id."""


def generate_access_key() -> Credentials:
    """A new access key: id ``CK`` + 16 base32 characters, secret 43 base64url characters.

    Show the secret to its owner once; store ``SecretBox.seal(id, secret)``.
    """
    key_id = ACCESS_KEY_ID_PREFIX + base64.b32encode(secrets.token_bytes(_ID_BYTES)).decode()
    return Credentials(key_id, secrets.token_urlsafe(_SECRET_BYTES))


def new_master_key() -> bytes:
    """32 random bytes for ``SecretBox``; keep them out of the database they protect."""
    return aead.new_key()


def master_key_id(master_key: bytes) -> bytes:
    return hmac.new(master_key, b"consortia/master-key-id", hashlib.sha256).digest()[:_KEY_ID_LEN]


def _check_master_key(master_key: bytes) -> None:
    if len(master_key) != aead.KEY_SIZE:
        raise ValueError(f"a master key is {aead.KEY_SIZE} bytes")
    if len(set(master_key)) < _MIN_DISTINCT_BYTES:  # all-zero, repeated or typed-in keys
        raise ValueError("the master key does not look random; use new_master_key()")


class SecretBox:
    """Seals and opens secrets with the server master key (AES-256-GCM), each bound to a
    domain and to the row that owns it.

    ``previous`` master keys can still open what they sealed; ``needs_reseal`` tells which
    stored secrets to seal again under the current key.
    """

    def __init__(self, master_key: bytes, *, previous: Iterable[bytes] = ()) -> None:
        keys = [master_key, *previous]
        for k in keys:
            _check_master_key(k)
        self._current = master_key_id(master_key)
        self._keys = {master_key_id(k): k for k in reversed(keys)}

    def __repr__(self) -> str:
        return f"SecretBox(master_key_id={self._current.hex()!r}, keys={len(self._keys)})"

    def seal(self, access_key_id: str, secret: str) -> bytes:
        """An access key's secret, sealed for its row."""
        return self.seal_bytes(ACCESS_KEY_SECRET, access_key_id, secret.encode("utf-8"))

    def open(self, access_key_id: str, sealed: bytes) -> str:
        """The secret sealed for ``access_key_id``; ``CryptoError`` if anything is off."""
        return self.open_bytes(ACCESS_KEY_SECRET, access_key_id, sealed).decode("utf-8")

    def seal_bytes(self, domain: str, binding: str, data: bytes) -> bytes:
        """``data`` sealed as a ``domain`` secret of the row ``binding`` names."""
        header = _VERSION + self._current
        nonce, ciphertext = aead.encrypt(self._keys[self._current], data,
                                         _aad(domain, binding, header))
        return header + nonce + ciphertext

    def open_bytes(self, domain: str, binding: str, sealed: bytes) -> bytes:
        """What ``seal_bytes(domain, binding, …)`` sealed; ``CryptoError`` if anything is
        off (another domain, another binding, another master key, a changed byte)."""
        header_len = 1 + _KEY_ID_LEN
        if len(sealed) < header_len + aead.NONCE_SIZE + 16 or sealed[:1] != _VERSION:
            raise CryptoError(f"not a sealed {domain}")
        key = self._keys.get(sealed[1:header_len])
        if key is None:
            raise CryptoError("sealed under an unknown master key")
        nonce = sealed[header_len:header_len + aead.NONCE_SIZE]
        return aead.decrypt(key, nonce, sealed[header_len + aead.NONCE_SIZE:],
                            _aad(domain, binding, sealed[:header_len]))

    def needs_reseal(self, sealed: bytes) -> bool:
        """True when ``sealed`` was sealed under a previous master key."""
        return sealed[1:1 + _KEY_ID_LEN] != self._current


def _aad(domain: str, binding: str, header: bytes) -> bytes:
    if not domain or not set(domain) <= _DOMAIN_CHARS:
        raise ValueError(f"sealing domain {domain!r}: lower-case letters and '-'")
    return header + b"consortia/" + domain.encode("ascii") + b"/1\x00" + binding.encode("utf-8")
