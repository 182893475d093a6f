"""The private-payload envelope: one ciphertext, one sealed key per recipient.

Tessera's model with ``cryptography`` primitives (ADR 0022):

- a fresh random 32-byte *master key* encrypts the payload with AES-256-GCM (the
  project's one AEAD), the sender's public key bound as associated data;
- for each recipient, the master key is wrapped under a key-encryption key derived by
  HKDF-SHA256 from the X25519 agreement of the *sender's static* private key with the
  *recipient's* public key (NaCl ``box`` semantics: only the recipient can open it, and
  opening it proves the sender's key made it), a fresh random salt making every KEK
  single-use; the wrap binds sender, recipient and the payload hash;
- the payload's hash is SHA3-512 of the ciphertext (as Tessera): the chain carries it.

Encoding (canonical msgpack, ADR 0001)::

    [1, sender(32), nonce(12), ciphertext, [[recipient(32), salt(32), nonce(12), wrapped(48)], ...]]

A recipient's manager receives only its own boxes; the sender keeps all of them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from consortia.crypto import CryptoError, aead
from consortia.privacy.errors import NotAParticipant, Tampered
from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import Malformed

VERSION = 1
KEY_SIZE = 32
SALT_SIZE = 32
HASH_SIZE = 64
WRAPPED_SIZE = aead.KEY_SIZE + 16
MAX_BOXES = 256
_PAYLOAD_AAD = b"consortia/privacy/payload/1"
_BOX_INFO = b"consortia/privacy/box/1"


def public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def payload_hash(ciphertext: bytes) -> bytes:
    """SHA3-512 of the encrypted payload: what the public transaction carries."""
    return hashlib.sha3_512(ciphertext).digest()


@dataclass(frozen=True, slots=True)
class RecipientBox:
    recipient: bytes
    """The recipient's X25519 public key (32 bytes)."""
    salt: bytes
    """HKDF salt, random per box: the key-encryption key is never reused."""
    nonce: bytes
    wrapped_key: bytes
    """The master key under AES-256-GCM (32 bytes + 16-byte tag)."""


@dataclass(frozen=True, slots=True)
class EncryptedPayload:
    sender: bytes
    """The sender's X25519 public key: the other half of every box's agreement."""
    nonce: bytes
    ciphertext: bytes
    boxes: tuple[RecipientBox, ...]

    @property
    def hash(self) -> bytes:
        return payload_hash(self.ciphertext)

    def recipients(self) -> tuple[bytes, ...]:
        return tuple(b.recipient for b in self.boxes)

    def for_recipients(self, keys: Iterable[bytes]) -> EncryptedPayload:
        """The same payload with only the boxes of ``keys`` (what one recipient gets)."""
        wanted = set(keys)
        return replace(self, boxes=tuple(b for b in self.boxes if b.recipient in wanted))

    def merged(self, other: EncryptedPayload) -> EncryptedPayload:
        """Union of the boxes of two copies of the same payload (a replayed push)."""
        if other.hash != self.hash or other.sender != self.sender:
            raise Tampered("two envelopes under one hash differ")
        have = {b.recipient for b in self.boxes}
        extra = tuple(b for b in other.boxes if b.recipient not in have)
        return replace(self, boxes=self.boxes + extra)

    def encode(self) -> bytes:
        return encode([VERSION, self.sender, self.nonce, self.ciphertext,
                       [[b.recipient, b.salt, b.nonce, b.wrapped_key] for b in self.boxes]])


def decode_payload(data: bytes, *, max_bytes: int) -> EncryptedPayload:
    """Strict decode of an envelope of at most ``max_bytes``; ``Malformed``/``TooLarge``."""
    r = Reader(decode(data, what="encrypted payload", max_size=max_bytes),
               "encrypted payload", length=5)
    version = r.int_("version", hi=2**16)
    if version != VERSION:
        raise Malformed(f"encrypted payload: unsupported version {version}")
    sender = r.bytes_("sender", max_len=KEY_SIZE, exact=KEY_SIZE)
    nonce = r.bytes_("nonce", max_len=aead.NONCE_SIZE, exact=aead.NONCE_SIZE)
    ciphertext = r.bytes_("ciphertext", max_len=max_bytes, min_len=16)
    raw_boxes = r.list_("boxes", max_len=MAX_BOXES)
    r.end()
    boxes = []
    for i, item in enumerate(raw_boxes):
        b = Reader(item, f"box {i}", length=4)
        boxes.append(RecipientBox(
            b.bytes_("recipient", max_len=KEY_SIZE, exact=KEY_SIZE),
            b.bytes_("salt", max_len=SALT_SIZE, exact=SALT_SIZE),
            b.bytes_("nonce", max_len=aead.NONCE_SIZE, exact=aead.NONCE_SIZE),
            b.bytes_("wrapped_key", max_len=WRAPPED_SIZE, exact=WRAPPED_SIZE)))
    if len({b.recipient for b in boxes}) != len(boxes):
        raise Malformed("encrypted payload: two boxes for one recipient")
    return EncryptedPayload(sender, nonce, ciphertext, tuple(boxes))


def _kek(own: X25519PrivateKey, other: bytes, salt: bytes, sender: bytes,
         recipient: bytes) -> bytes:
    try:
        shared = own.exchange(X25519PublicKey.from_public_bytes(other))
    except ValueError as exc:  # a low-order point gives an all-zero secret
        raise Tampered("a box names an unusable public key") from exc
    return HKDF(algorithm=hashes.SHA256(), length=aead.KEY_SIZE, salt=salt,
                info=_BOX_INFO + sender + recipient).derive(shared)


def _wrap(sender_key: X25519PrivateKey, master_key: bytes, digest: bytes,
          recipient: bytes) -> RecipientBox:
    sender = public_bytes(sender_key)
    salt = os.urandom(SALT_SIZE)
    kek = _kek(sender_key, recipient, salt, sender, recipient)
    nonce, wrapped = aead.encrypt(kek, master_key, sender + recipient + digest)
    return RecipientBox(recipient, salt, nonce, wrapped)


def seal(payload: bytes, sender_key: X25519PrivateKey,
         recipients: Sequence[bytes]) -> EncryptedPayload:
    """Encrypt ``payload`` once and seal its master key for each of ``recipients``
    (duplicates dropped, order kept). The sender is not added implicitly."""
    unique = list(dict.fromkeys(recipients))
    if not unique:
        raise Malformed("an encrypted payload needs at least one recipient")
    if len(unique) > MAX_BOXES:
        raise Malformed(f"at most {MAX_BOXES} recipients")
    for r in unique:
        if len(r) != KEY_SIZE:
            raise Malformed("a recipient key is 32 bytes (X25519)")
    sender = public_bytes(sender_key)
    master_key = aead.new_key()
    nonce, ciphertext = aead.encrypt(master_key, payload, _PAYLOAD_AAD + sender)
    digest = payload_hash(ciphertext)
    boxes = tuple(_wrap(sender_key, master_key, digest, r) for r in unique)
    return EncryptedPayload(sender, nonce, ciphertext, boxes)


def _master_key(ep: EncryptedPayload, own: X25519PrivateKey) -> bytes:
    me = public_bytes(own)
    box = next((b for b in ep.boxes if b.recipient == me), None)
    if box is None:
        raise NotAParticipant("this key holds no box of the payload")
    kek = _kek(own, ep.sender, box.salt, ep.sender, me)
    try:
        return aead.decrypt(kek, box.nonce, box.wrapped_key, ep.sender + me + ep.hash)
    except CryptoError as exc:
        raise Tampered("the recipient box does not open: tampered or not from its sender") \
            from exc


def open_payload(ep: EncryptedPayload, own: X25519PrivateKey) -> bytes:
    """The plaintext, as the holder of ``own`` (a recipient with a box);
    ``NotAParticipant`` without a box, ``Tampered`` when anything fails to verify."""
    master_key = _master_key(ep, own)
    try:
        return aead.decrypt(master_key, ep.nonce, ep.ciphertext, _PAYLOAD_AAD + ep.sender)
    except CryptoError as exc:
        raise Tampered("the payload does not decrypt under its master key") from exc


def add_recipients(ep: EncryptedPayload, sender_key: X25519PrivateKey,
                   recipients: Sequence[bytes]) -> EncryptedPayload:
    """Seal the same master key for more recipients (the signed-transaction flow: the
    hash was fixed by ``storeraw`` before the recipients were known). Only the sender,
    who holds its own box, can do this; the ciphertext and hash do not change."""
    if public_bytes(sender_key) != ep.sender:
        raise NotAParticipant("only the payload's sender can add recipients")
    master_key = _master_key(ep, sender_key)
    have = set(ep.recipients())
    new = [r for r in dict.fromkeys(recipients) if r not in have]
    if len(have) + len(new) > MAX_BOXES:
        raise Malformed(f"at most {MAX_BOXES} recipients")
    for r in new:
        if len(r) != KEY_SIZE:
            raise Malformed("a recipient key is 32 bytes (X25519)")
    boxes = tuple(_wrap(sender_key, master_key, ep.hash, r) for r in new)
    return replace(ep, boxes=ep.boxes + boxes)
