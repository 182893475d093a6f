"""Notary record builders, and decryption for a holder of the right key.

``ciphertext`` encrypts on the client and returns the key to keep; the node
only ever sees ciphertext. ``privacy`` seals a digital envelope for the
certificates of named recipients; ``open_privacy`` opens it for one of them.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from consortia.crypto import aead, envelope
from consortia.sdk.identity import Identity, Recipient
from consortia.types.tx import (
    CiphertextRecord,
    ContentRecord,
    HashRecord,
    LinkRecord,
    NotaryMeta,
    PrivacyRecord,
    SealedEnvelope,
    WrappedKey,
)


def _meta(business_id: str, category: str, business_time_ms: int | None) -> NotaryMeta:
    return NotaryMeta(business_id, category,
                      business_time_ms if business_time_ms is not None
                      else time.time_ns() // 1_000_000)


def content(business_id: str, data: bytes, *, category: str = "", media_type: str = "",
            business_time_ms: int | None = None) -> ContentRecord:
    return ContentRecord(_meta(business_id, category, business_time_ms), media_type, data)


def digest(business_id: str, data: bytes, *, category: str = "", algorithm: str = "sha256",
           business_time_ms: int | None = None) -> HashRecord:
    """A hash record of ``data`` (only the digest goes on chain)."""
    return HashRecord(_meta(business_id, category, business_time_ms), algorithm,
                      hashlib.new(algorithm.replace("-", "_"), data).digest())


def known_digest(business_id: str, digest_bytes: bytes, *, algorithm: str = "sha256",
                 category: str = "", business_time_ms: int | None = None) -> HashRecord:
    """A hash record of a digest computed elsewhere."""
    return HashRecord(_meta(business_id, category, business_time_ms), algorithm, digest_bytes)


def file_digest(path: Path, *, business_id: str | None = None, category: str = "file",
                algorithm: str = "sha256", business_time_ms: int | None = None) -> HashRecord:
    h = hashlib.new(algorithm.replace("-", "_"))
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return HashRecord(_meta(business_id or Path(path).name, category, business_time_ms),
                      algorithm, h.digest())


def link(business_id: str, uri: str, digest_bytes: bytes, *, algorithm: str = "sha256",
         category: str = "", business_time_ms: int | None = None) -> LinkRecord:
    return LinkRecord(_meta(business_id, category, business_time_ms), uri, algorithm,
                      digest_bytes)


def ciphertext(business_id: str, data: bytes, *, key: bytes | None = None, key_id: str = "",
               category: str = "", business_time_ms: int | None = None
               ) -> tuple[CiphertextRecord, bytes]:
    """Encrypt ``data`` client-side; returns the record and the key (keep it, it is not sent)."""
    key = key or aead.new_key()
    meta = _meta(business_id, category, business_time_ms)
    nonce, ct = aead.encrypt(key, data, meta.business_id.encode())
    return CiphertextRecord(meta, aead.ALGORITHM, nonce, ct, key_id), key


def decrypt_ciphertext(record: CiphertextRecord, key: bytes) -> bytes:
    return aead.decrypt(key, record.nonce, record.ciphertext, record.meta.business_id.encode())


def privacy(business_id: str, data: bytes, recipients: list[Recipient], *, category: str = "",
            business_time_ms: int | None = None, suite: str = "p256-sha256") -> PrivacyRecord:
    """Seal ``data`` for ``recipients`` (include yourself to read it back)."""
    from consortia.crypto import get_suite
    meta = _meta(business_id, category, business_time_ms)
    sealed = envelope.seal(get_suite(suite), data,
                           [(r.fingerprint, r.public_key) for r in recipients],
                           meta.business_id.encode())
    return PrivacyRecord(meta, SealedEnvelope(
        sealed.scheme, sealed.nonce, sealed.ciphertext,
        tuple(WrappedKey(w.recipient, w.ephemeral_public_key, w.nonce, w.wrapped_key)
              for w in sealed.recipients)))


def open_privacy(record: PrivacyRecord, identity: Identity) -> bytes:
    """Decrypt a privacy record as ``identity``; ``CryptoError`` if it is not a recipient."""
    env = record.envelope
    sealed = envelope.Sealed(env.scheme, env.nonce, env.ciphertext, tuple(
        envelope.Wrapped(w.recipient, w.ephemeral_public_key, w.nonce, w.wrapped_key)
        for w in env.recipients))
    return envelope.open_sealed(identity.suite, sealed, identity.fingerprint, identity.key,
                                record.meta.business_id.encode())
