"""Transactions: the signed envelope, its payload, and the body of each type.

*Sign bytes, carry bytes*: an ``Envelope`` carries the payload as the exact bytes
that were signed. The transaction id is the suite hash of those payload bytes
(never of the signature), so a re-encoded signature can never mint a new id.

Wire layout (docs/spec/transactions.md)::

    Envelope = [version=1, payload: bin, signer: bin (X.509 DER), signature: bin]
    Payload  = [version=1, chain_id: str, type: int, nonce: bin(16),
                timestamp_ms: int, body: array]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NewType, TypeAlias

from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import Malformed

TxId = NewType("TxId", bytes)

ENVELOPE_VERSION = 1
PAYLOAD_VERSION = 1

# Field limits (bytes unless noted). docs/spec/transactions.md is their contract.
MAX_ENVELOPE_BYTES = 1_200_000
MAX_PAYLOAD_BYTES = 1_100_000
MAX_CERT_BYTES = 4096
MAX_SIGNATURE_BYTES = 132
MAX_CHAIN_ID = 64
NONCE_BYTES = 16
MAX_BUSINESS_ID = 128
MAX_CATEGORY = 64
MAX_MEDIA_TYPE = 128
MAX_CONTENT = 512 * 1024
MAX_CIPHERTEXT = MAX_CONTENT + 16
MAX_URI = 2048
MAX_DIGEST = 64
MAX_ALGORITHM = 32
MAX_KEY_ID = 128
MAX_RECIPIENTS = 64
MAX_CRL_BYTES = 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
MAX_APPROVALS = 256
MAX_ORG_ID = 64
MAX_CA_CERT_BYTES = 8192
"""The config decoder's bound on an organization's CA certificate."""


class TxType(IntEnum):
    """Transaction types. Config types are < 10, notary types 10..19, ``EVM`` (20) the raw
    Ethereum transactions of quorum chains (stored with this type; they have no envelope)."""

    CONFIG = 0
    CRL_UPDATE = 1
    VALIDATOR_UPDATE = 2
    ORG_UPDATE = 3
    ACCOUNT_UPDATE = 4
    NOTARY_CONTENT = 10
    NOTARY_HASH = 11
    NOTARY_LINK = 12
    NOTARY_CIPHERTEXT = 13
    NOTARY_PRIVACY = 14
    EVM = 20
    EVM_PRIVATE = 21
    """A private transaction's marker: a raw Ethereum transaction whose data is the hash
    of the payload its participants' transaction managers hold (ADR 0027)."""

    @property
    def is_config(self) -> bool:
        return self < 10

    @property
    def is_ethereum(self) -> bool:
        """A quorum chain's raw Ethereum transaction (a private marker included)."""
        return self >= 20

    @property
    def is_notary(self) -> bool:
        return 10 <= self < 20


HASH_ALGORITHMS: dict[str, int] = {
    "sha256": 32,
    "sha384": 48,
    "sha512": 64,
    "sha3-256": 32,
    "sm3": 32,
}


@dataclass(frozen=True, slots=True)
class NotaryMeta:
    """What every notary record has in common (Ant Blockchain's notary model)."""

    business_id: str
    """The caller's own key for the record (order number, contract id...); indexed."""
    category: str
    """A caller-chosen class of records; indexed together with business_time."""
    business_time_ms: int
    """When the business event happened (ms since the Unix epoch), as the caller says."""

    def encode_fields(self) -> list[Any]:
        return [self.business_id, self.category, self.business_time_ms]

    @staticmethod
    def read(r: Reader) -> NotaryMeta:
        return NotaryMeta(
            business_id=r.str_("business_id", max_len=MAX_BUSINESS_ID, min_len=1),
            category=r.str_("category", max_len=MAX_CATEGORY),
            business_time_ms=r.int_("business_time_ms"),
        )


@dataclass(frozen=True, slots=True)
class ContentRecord:
    """Plaintext content notarized in full (up to 512 KiB)."""

    meta: NotaryMeta
    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class HashRecord:
    """Only the digest of a document is put on chain."""

    meta: NotaryMeta
    algorithm: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """An external URI and the digest of what it points to."""

    meta: NotaryMeta
    uri: str
    algorithm: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class CiphertextRecord:
    """Client-side AES-256-GCM ciphertext; the key never leaves the client."""

    meta: NotaryMeta
    algorithm: str
    nonce: bytes
    ciphertext: bytes
    key_id: str
    """An opaque label the client uses to find its key again (may be empty)."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """The data key of a sealed envelope, wrapped for one recipient (ECIES)."""

    recipient: bytes
    """Suite hash of the recipient certificate's DER (its fingerprint)."""
    ephemeral_public_key: bytes
    nonce: bytes
    wrapped_key: bytes


@dataclass(frozen=True, slots=True)
class SealedEnvelope:
    """Data encrypted under a fresh data key that is wrapped for each recipient."""

    scheme: str
    nonce: bytes
    ciphertext: bytes
    recipients: tuple[WrappedKey, ...]


@dataclass(frozen=True, slots=True)
class PrivacyRecord:
    """Privacy sharing: a digital envelope readable by the named recipients only."""

    meta: NotaryMeta
    envelope: SealedEnvelope


@dataclass(frozen=True, slots=True)
class CrlUpdate:
    """An organization admin publishes a new CRL for its own CA."""

    org_id: str
    crl_der: bytes


@dataclass(frozen=True, slots=True)
class Approval:
    """An organization admin's signature over a configuration change (``approval_message``)."""

    cert: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class ValidatorUpdate:
    """Add a validator to the set, or remove one: a change of who orders and certifies
    blocks, so it needs the approval of a majority of the organizations' admins (the
    signer's organization counts as one). It names the configuration ``sequence`` it was
    approved against, so approvals cannot be replayed once the configuration moved on."""

    op: str
    """``add`` or ``remove``."""
    validator_id: str
    org_id: str
    cert: bytes
    """The new validator's certificate (role ``validator``, of ``org_id``); empty to remove."""
    endpoint: str
    """"host:port" of its transport (empty to remove, or when node settings say it)."""
    sequence: int
    approvals: tuple[Approval, ...] = ()

    def approval_message(self, chain_id: str) -> bytes:
        """What an approving admin signs: everything but the approvals."""
        return encode(["consortia/validator-update/1", chain_id, self.op, self.validator_id,
                       self.org_id, self.cert, self.endpoint, self.sequence])


@dataclass(frozen=True, slots=True)
class OrgUpdate:
    """Add an organization (a new member, with its own root CA) to the consortium, or
    remove one: a change of who may act on the chain at all, so it needs the organizations'
    vote under ``policies.membership`` (the signer's organization counts as one approval).
    Like ``ValidatorUpdate`` it names the configuration ``sequence`` it was approved
    against, so its approvals cannot be replayed once the configuration moved on."""

    op: str
    """``add`` or ``remove``."""
    org_id: str
    """The organization's id (MSP id), also the O= of its certificates."""
    ca_cert: bytes
    """The new organization's root CA certificate, DER; empty to remove."""
    sequence: int
    approvals: tuple[Approval, ...] = ()

    def approval_message(self, chain_id: str) -> bytes:
        """What an approving admin signs: everything but the approvals."""
        return encode(["consortia/org-update/1", chain_id, self.op, self.org_id,
                       self.ca_cert, self.sequence])


MAX_ACCOUNTS_PER_UPDATE = 256


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """Bind Ethereum addresses to an organization of a quorum chain, or unbind them: who may
    send Ethereum transactions (ADR 0025). Signed by an admin of ``org_id``; no vote, since an
    organization vouches only for its own accounts."""

    op: str
    """``add`` or ``remove``."""
    org_id: str
    addresses: tuple[bytes, ...]
    """20-byte addresses, at least one."""


@dataclass(frozen=True, slots=True)
class ConfigBody:
    """The whole chain configuration, canonical bytes (genesis and later config blocks)."""

    config: bytes


NotaryBody: TypeAlias = ContentRecord | HashRecord | LinkRecord | CiphertextRecord | PrivacyRecord
ConfigChange: TypeAlias = CrlUpdate | ValidatorUpdate | OrgUpdate | AccountUpdate | ConfigBody
Body: TypeAlias = NotaryBody | ConfigChange


@dataclass(frozen=True, slots=True)
class Payload:
    """What the signer signs: chain binding, replay protection, type and body."""

    chain_id: str
    type: TxType
    nonce: bytes
    timestamp_ms: int
    body: Body

    def encode(self) -> bytes:
        return encode([PAYLOAD_VERSION, self.chain_id, int(self.type), self.nonce,
                       self.timestamp_ms, encode_body(self.body)])

    @staticmethod
    def decode(data: bytes) -> Payload:
        r = Reader(decode(data, what="payload", max_size=MAX_PAYLOAD_BYTES), "payload", length=6)
        version = r.int_("version")
        if version != PAYLOAD_VERSION:
            raise Malformed(f"payload.version: unsupported version {version}")
        chain_id = r.str_("chain_id", max_len=MAX_CHAIN_ID, min_len=1)
        raw_type = r.int_("type", hi=255)
        try:
            tx_type = TxType(raw_type)
        except ValueError as exc:
            raise Malformed(f"payload.type: unknown transaction type {raw_type}") from exc
        if tx_type.is_ethereum:  # raw Ethereum bytes, never inside a Consortia envelope
            raise Malformed(f"payload.type: unknown transaction type {raw_type}")
        nonce = r.bytes_("nonce", max_len=NONCE_BYTES, exact=NONCE_BYTES)
        timestamp_ms = r.int_("timestamp_ms")
        body = decode_body(tx_type, r.any_("body"))
        r.end()
        return Payload(chain_id, tx_type, nonce, timestamp_ms, body)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A signed transaction as it travels and as it is stored."""

    payload: bytes
    signer: bytes
    """The signer's X.509 certificate, DER."""
    signature: bytes

    def encode(self) -> bytes:
        return encode([ENVELOPE_VERSION, self.payload, self.signer, self.signature])

    @staticmethod
    def decode(data: bytes) -> Envelope:
        r = Reader(decode(data, what="envelope", max_size=MAX_ENVELOPE_BYTES), "envelope",
                   length=4)
        version = r.int_("version")
        if version != ENVELOPE_VERSION:
            raise Malformed(f"envelope.version: unsupported version {version}")
        payload = r.bytes_("payload", max_len=MAX_PAYLOAD_BYTES, min_len=1)
        signer = r.bytes_("signer", max_len=MAX_CERT_BYTES, min_len=1)
        signature = r.bytes_("signature", max_len=MAX_SIGNATURE_BYTES, min_len=1)
        r.end()
        return Envelope(payload, signer, signature)


def _check_algorithm(r_what: str, algorithm: str, digest: bytes) -> None:
    size = HASH_ALGORITHMS.get(algorithm)
    if size is None:
        raise Malformed(f"{r_what}.algorithm: unsupported hash algorithm {algorithm!r}")
    if len(digest) != size:
        raise Malformed(f"{r_what}.digest: {algorithm} digests are {size} bytes, got {len(digest)}")


def _check_uri(uri: str) -> None:
    scheme, sep, rest = uri.partition(":")
    if not sep or not scheme or not rest or not scheme[0].isalpha() or not all(
        c.isalnum() or c in "+-." for c in scheme
    ):
        raise Malformed("link.uri: expected an absolute URI with a scheme")
    if any(ord(c) < 0x21 for c in uri):
        raise Malformed("link.uri: must not contain spaces or control characters")


def encode_body(body: Body) -> list[Any]:
    """The array form of a body; its type is carried by ``Payload.type``."""
    match body:
        case ContentRecord(meta, media_type, data):
            return [*meta.encode_fields(), media_type, data]
        case HashRecord(meta, algorithm, digest):
            return [*meta.encode_fields(), algorithm, digest]
        case LinkRecord(meta, uri, algorithm, digest):
            return [*meta.encode_fields(), uri, algorithm, digest]
        case CiphertextRecord(meta, algorithm, nonce, ciphertext, key_id):
            return [*meta.encode_fields(), algorithm, nonce, ciphertext, key_id]
        case PrivacyRecord(meta, env):
            return [*meta.encode_fields(), env.scheme, env.nonce, env.ciphertext,
                    [[w.recipient, w.ephemeral_public_key, w.nonce, w.wrapped_key]
                     for w in env.recipients]]
        case CrlUpdate(org_id, crl_der):
            return [org_id, crl_der]
        case ValidatorUpdate(op, vid, org_id, cert, endpoint, sequence, approvals):
            return [op, vid, org_id, cert, endpoint, sequence,
                    [[a.cert, a.signature] for a in approvals]]
        case OrgUpdate(op, org_id, ca_cert, sequence, approvals):
            return [op, org_id, ca_cert, sequence, [[a.cert, a.signature] for a in approvals]]
        case AccountUpdate(op, org_id, addresses):
            return [op, org_id, list(addresses)]
        case ConfigBody(config):
            return [config]
    raise TypeError(f"not a transaction body: {type(body).__name__}")


def body_type(body: Body) -> TxType:
    """The ``TxType`` a body must be sent as."""
    return _BODY_TYPES[type(body)]


def decode_body(tx_type: TxType, value: Any) -> Body:
    """Decode and validate the body of a payload of type ``tx_type``."""
    what = f"body<{tx_type.name.lower()}>"
    if tx_type is TxType.NOTARY_CONTENT:
        r = Reader(value, what, length=5)
        meta = NotaryMeta.read(r)
        media_type = r.str_("media_type", max_len=MAX_MEDIA_TYPE)
        data = r.bytes_("data", max_len=MAX_CONTENT)
        return ContentRecord(meta, media_type, data)
    if tx_type is TxType.NOTARY_HASH:
        r = Reader(value, what, length=5)
        meta = NotaryMeta.read(r)
        algorithm = r.str_("algorithm", max_len=MAX_ALGORITHM)
        digest = r.bytes_("digest", max_len=MAX_DIGEST)
        _check_algorithm(what, algorithm, digest)
        return HashRecord(meta, algorithm, digest)
    if tx_type is TxType.NOTARY_LINK:
        r = Reader(value, what, length=6)
        meta = NotaryMeta.read(r)
        uri = r.str_("uri", max_len=MAX_URI, min_len=1)
        _check_uri(uri)
        algorithm = r.str_("algorithm", max_len=MAX_ALGORITHM)
        digest = r.bytes_("digest", max_len=MAX_DIGEST)
        _check_algorithm(what, algorithm, digest)
        return LinkRecord(meta, uri, algorithm, digest)
    if tx_type is TxType.NOTARY_CIPHERTEXT:
        r = Reader(value, what, length=7)
        meta = NotaryMeta.read(r)
        algorithm = r.str_("algorithm", max_len=MAX_ALGORITHM)
        if algorithm != "aes-256-gcm":
            raise Malformed(f"{what}.algorithm: only aes-256-gcm is supported")
        nonce = r.bytes_("nonce", max_len=12, exact=12)
        ciphertext = r.bytes_("ciphertext", max_len=MAX_CIPHERTEXT, min_len=16)
        key_id = r.str_("key_id", max_len=MAX_KEY_ID)
        return CiphertextRecord(meta, algorithm, nonce, ciphertext, key_id)
    if tx_type is TxType.NOTARY_PRIVACY:
        r = Reader(value, what, length=7)
        meta = NotaryMeta.read(r)
        scheme = r.str_("scheme", max_len=MAX_ALGORITHM, min_len=1)
        nonce = r.bytes_("nonce", max_len=12, exact=12)
        ciphertext = r.bytes_("ciphertext", max_len=MAX_CIPHERTEXT, min_len=16)
        raw_recipients = r.list_("recipients", max_len=MAX_RECIPIENTS)
        if not raw_recipients:
            raise Malformed(f"{what}.recipients: at least one recipient is required")
        recipients = []
        for i, item in enumerate(raw_recipients):
            rr = Reader(item, f"{what}.recipients[{i}]", length=4)
            recipients.append(WrappedKey(
                recipient=rr.bytes_("recipient", max_len=MAX_DIGEST, min_len=16),
                ephemeral_public_key=rr.bytes_("ephemeral_public_key", max_len=133, min_len=32),
                nonce=rr.bytes_("nonce", max_len=12, exact=12),
                wrapped_key=rr.bytes_("wrapped_key", max_len=64, min_len=32),
            ))
        if len({w.recipient for w in recipients}) != len(recipients):
            raise Malformed(f"{what}.recipients: a recipient is named twice")
        return PrivacyRecord(meta, SealedEnvelope(scheme, nonce, ciphertext, tuple(recipients)))
    if tx_type is TxType.CRL_UPDATE:
        r = Reader(value, what, length=2)
        return CrlUpdate(r.str_("org_id", max_len=MAX_CHAIN_ID, min_len=1),
                         r.bytes_("crl_der", max_len=MAX_CRL_BYTES, min_len=1))
    if tx_type is TxType.VALIDATOR_UPDATE:
        r = Reader(value, what, length=7)
        op = r.str_("op", max_len=8)
        if op not in ("add", "remove"):
            raise Malformed(f"{what}.op: expected add or remove")
        vid = r.str_("validator_id", max_len=64, min_len=1)
        org_id = r.str_("org_id", max_len=MAX_CHAIN_ID, min_len=1)
        cert = r.bytes_("cert", max_len=8192)
        endpoint = r.str_("endpoint", max_len=255)
        sequence = r.int_("sequence")
        approvals = _read_approvals(r, what)
        if (op == "add") != bool(cert):
            raise Malformed(f"{what}.cert: required to add a validator, empty to remove one")
        return ValidatorUpdate(op, vid, org_id, cert, endpoint, sequence, approvals)
    if tx_type is TxType.ORG_UPDATE:
        r = Reader(value, what, length=5)
        op = r.str_("op", max_len=8)
        if op not in ("add", "remove"):
            raise Malformed(f"{what}.op: expected add or remove")
        org_id = r.str_("org_id", max_len=MAX_ORG_ID, min_len=1)
        if not all(c.isascii() and (c.isalnum() or c in "-_.") for c in org_id):
            raise Malformed(f"{what}.org_id: use letters, digits, - _ . only")
        ca_cert = r.bytes_("ca_cert", max_len=MAX_CA_CERT_BYTES)
        sequence = r.int_("sequence")
        approvals = _read_approvals(r, what)
        if (op == "add") != bool(ca_cert):
            raise Malformed(f"{what}.ca_cert: required to add an organization, empty to "
                            "remove one")
        return OrgUpdate(op, org_id, ca_cert, sequence, approvals)
    if tx_type is TxType.ACCOUNT_UPDATE:
        r = Reader(value, what, length=3)
        op = r.str_("op", max_len=8)
        if op not in ("add", "remove"):
            raise Malformed(f"{what}.op: expected add or remove")
        org_id = r.str_("org_id", max_len=MAX_ORG_ID, min_len=1)
        raw = r.list_("addresses", max_len=MAX_ACCOUNTS_PER_UPDATE)
        if not raw:
            raise Malformed(f"{what}.addresses: at least one address is required")
        addresses = tuple(Reader([a], f"{what}.addresses[{i}]").bytes_("address", max_len=20,
                                                                        exact=20)
                          for i, a in enumerate(raw))
        if len(set(addresses)) != len(addresses):
            raise Malformed(f"{what}.addresses: an address is named twice")
        return AccountUpdate(op, org_id, addresses)
    if tx_type is TxType.CONFIG:
        r = Reader(value, what, length=1)
        return ConfigBody(r.bytes_("config", max_len=MAX_CONFIG_BYTES, min_len=1))
    raise Malformed(f"payload.type: no body decoder for {tx_type.name}")


def _read_approvals(r: Reader, what: str) -> tuple[Approval, ...]:
    approvals = []
    for i, item in enumerate(r.list_("approvals", max_len=MAX_APPROVALS)):
        a = Reader(item, f"{what}.approvals[{i}]", length=2)
        approvals.append(Approval(a.bytes_("cert", max_len=8192, min_len=1),
                                  a.bytes_("signature", max_len=132, min_len=1)))
        a.end()
    return tuple(approvals)


_BODY_TYPES: dict[type, TxType] = {
    ContentRecord: TxType.NOTARY_CONTENT,
    HashRecord: TxType.NOTARY_HASH,
    LinkRecord: TxType.NOTARY_LINK,
    CiphertextRecord: TxType.NOTARY_CIPHERTEXT,
    PrivacyRecord: TxType.NOTARY_PRIVACY,
    CrlUpdate: TxType.CRL_UPDATE,
    ValidatorUpdate: TxType.VALIDATOR_UPDATE,
    OrgUpdate: TxType.ORG_UPDATE,
    AccountUpdate: TxType.ACCOUNT_UPDATE,
    ConfigBody: TxType.CONFIG,
}


def notary_meta(body: Body) -> NotaryMeta | None:
    """The notary metadata of a body, or None for configuration bodies."""
    if isinstance(body, CrlUpdate | ValidatorUpdate | OrgUpdate | AccountUpdate | ConfigBody):
        return None
    return body.meta


@dataclass(frozen=True, slots=True)
class Tx:
    """An admitted transaction: envelope, its decoded payload and its id."""

    id: TxId
    envelope: Envelope
    raw: bytes
    """``envelope.encode()``, kept so it is never re-encoded on the hot path."""
    payload: Payload
