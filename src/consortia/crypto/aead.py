"""AES-256-GCM, the one AEAD of the project (ciphertext notary records, envelopes)."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consortia.crypto.suite import CryptoError

KEY_SIZE = 32
NONCE_SIZE = 12
ALGORITHM = "aes-256-gcm"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> tuple[bytes, bytes]:
    """Returns (nonce, ciphertext||tag) under a fresh random nonce."""
    if len(key) != KEY_SIZE:
        raise CryptoError("AES-256-GCM takes a 32-byte key")
    nonce = os.urandom(NONCE_SIZE)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad or None)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    if len(key) != KEY_SIZE:
        raise CryptoError("AES-256-GCM takes a 32-byte key")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad or None)
    except InvalidTag as exc:
        raise CryptoError("decryption failed: wrong key or tampered ciphertext") from exc
