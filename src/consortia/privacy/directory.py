"""The key directory: which organization's manager holds which public key — from an
authority, never from a peer's word (the lesson of Tessera issue 649).

Tessera learned its recipients' keys and URLs from its peers' ``partyinfo``; anyone who
could reach the port could announce someone else's key at their own URL and have
payloads delivered to them (or dropped). Here:

- A *directory entry* binds an organization id to its manager's public keys and
  endpoint, with a sequence number. It is signed by an **admin of that organization**:
  a certificate issued by the organization's CA with role ``admin`` (ADR 0004) whose O=
  is the entry's organization. ``OrgTrust`` checks that against the organization CAs of
  the consortium (``from_chain_config``: the chain's own configuration; the static file
  form names them in the manager's settings).
- A key belongs to at most one organization: a directory in which two organizations
  claim one key is refused whole (``ForeignKey``).
- An update to an entry (``KeyDirectory.updated``: a peer's announcement) must be signed
  the same way, must be for the announcing manager's own organization (its mTLS
  certificate), newer than the entry held, and may not claim a key bound to another
  organization.

The static file form (``SignedDirectoryFile``, JSON)::

    {"version": 1, "entries": [{"org_id": "org1", "sequence": 1, "endpoint": "host:port",
      "public_keys": [b64, ...], "signer_cert": b64 DER, "signature": b64}, ...]}

The signature is the P-256 signature (ADR 0004 identities) over the canonical msgpack of
``["consortia/privacy/directory-entry/1", org_id, sequence, endpoint, [keys...]]``, so
JSON formatting does not matter.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from consortia.crypto import SigningKey
from consortia.identity.membership import Membership
from consortia.privacy.box import KEY_SIZE
from consortia.privacy.errors import ForeignKey, InvalidEntry, PeerRefused, StaleEntry
from consortia.types.codec import encode
from consortia.types.config import ChainConfig, ConsensusKind, OrgConfig, Profile, Role
from consortia.types.errors import ConfigError, Malformed, Unauthorized

_DOMAIN = "consortia/privacy/directory-entry/1"
MAX_KEYS_PER_ORG = 16
MAX_ENDPOINT = 255


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: Any, what: str) -> bytes:
    if not isinstance(s, str):
        raise Malformed(f"{what}: expected base64 text")
    try:
        return base64.b64decode(s, validate=True)
    except ValueError:
        raise Malformed(f"{what}: not base64") from None


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    org_id: str
    sequence: int
    """Grows with every change of the organization's keys or endpoint."""
    endpoint: str
    """``host:port`` of the organization's manager peer API (mutual TLS)."""
    public_keys: tuple[bytes, ...]

    def statement(self) -> bytes:
        """The canonical bytes an organization admin signs."""
        return encode([_DOMAIN, self.org_id, self.sequence, self.endpoint,
                       list(self.public_keys)])


@dataclass(frozen=True, slots=True)
class SignedEntry:
    entry: DirectoryEntry
    signer_cert: bytes
    """DER certificate of the admin who signed."""
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        e = self.entry
        return {"org_id": e.org_id, "sequence": e.sequence, "endpoint": e.endpoint,
                "public_keys": [_b64(k) for k in e.public_keys],
                "signer_cert": _b64(self.signer_cert), "signature": _b64(self.signature)}

    @classmethod
    def from_json(cls, doc: Any) -> SignedEntry:
        """Parse untrusted JSON; ``Malformed`` for any structural fault."""
        if not isinstance(doc, dict):
            raise Malformed("directory entry: expected an object")
        org_id, seq, endpoint = doc.get("org_id"), doc.get("sequence"), doc.get("endpoint")
        keys = doc.get("public_keys")
        if not isinstance(org_id, str) or not 0 < len(org_id) <= 64:
            raise Malformed("directory entry: org_id must be 1 to 64 characters")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
            raise Malformed("directory entry: sequence must be a non-negative integer")
        if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT \
                or ":" not in endpoint:
            raise Malformed("directory entry: endpoint must be host:port")
        if not isinstance(keys, list) or not 0 < len(keys) <= MAX_KEYS_PER_ORG:
            raise Malformed(f"directory entry: 1 to {MAX_KEYS_PER_ORG} public keys")
        public_keys = tuple(_unb64(k, "directory entry: public key") for k in keys)
        if any(len(k) != KEY_SIZE for k in public_keys):
            raise Malformed("directory entry: a public key is 32 bytes (X25519)")
        if len(set(public_keys)) != len(public_keys):
            raise Malformed("directory entry: a public key is listed twice")
        return cls(DirectoryEntry(org_id, seq, endpoint, public_keys),
                   _unb64(doc.get("signer_cert"), "directory entry: signer_cert"),
                   _unb64(doc.get("signature"), "directory entry: signature"))


def sign_entry(entry: DirectoryEntry, admin_key: SigningKey, admin_cert: bytes) -> SignedEntry:
    """Sign ``entry`` as an organization admin (``admin_cert`` is its DER certificate)."""
    return SignedEntry(entry, admin_cert, admin_key.sign(entry.statement()))


class OrgTrust:
    """The consortium's organization CAs: who is an admin or a manager of which org.

    Built on ``Membership`` (the same rule the chain uses: issuer, O=, validity window,
    the CRL, the OU role). The configuration it wraps has organizations only: the
    transaction manager has no validators to know about."""

    def __init__(self, organizations: Iterable[OrgConfig], suite: str = "p256-sha256") -> None:
        orgs = tuple(organizations)
        if not orgs:
            raise ConfigError("the transaction manager needs at least one organization CA")
        self.organizations = orgs
        self._membership = Membership(ChainConfig(
            chain_id="privacy", profile=Profile.QUORUM, suite=suite,
            consensus=ConsensusKind.SOLO, organizations=orgs, validators=()))

    @classmethod
    def from_chain_config(cls, config: ChainConfig) -> OrgTrust:
        return cls(config.organizations, config.suite)

    @classmethod
    def from_ca_certs(cls, ca_certs: Mapping[str, bytes]) -> OrgTrust:
        """org id → DER CA certificate (no CRLs)."""
        return cls(OrgConfig(org_id, der) for org_id, der in ca_certs.items())

    def ca_cert(self, org_id: str) -> bytes:
        for o in self.organizations:
            if o.id == org_id:
                return o.ca_cert
        raise ConfigError(f"unknown organization {org_id}")

    def verify_entry(self, signed: SignedEntry, now_ms: int) -> DirectoryEntry:
        """The entry, if an admin of its own organization signed it; else ``InvalidEntry``."""
        try:
            member = self._membership.validate(signed.signer_cert, (Role.ADMIN,), now_ms)
        except Unauthorized as exc:
            raise InvalidEntry(f"entry of {signed.entry.org_id}: signer refused: "
                               f"{exc.message}") from None
        if member.org_id != signed.entry.org_id:
            raise InvalidEntry(f"entry of {signed.entry.org_id} is signed by an admin of "
                               f"{member.org_id}")
        if not self._membership.suite.verify(member.public_key, signed.entry.statement(),
                                             signed.signature):
            raise InvalidEntry(f"entry of {signed.entry.org_id}: bad signature")
        return signed.entry

    def identify_manager(self, cert_der: bytes, now_ms: int) -> str:
        """The organization of a manager's TLS certificate (role ``peer``), or
        ``PeerRefused``."""
        try:
            return self._membership.validate(cert_der, (Role.PEER,), now_ms).org_id
        except Unauthorized as exc:
            raise PeerRefused(f"not a member's transaction manager: {exc.message}") from None


class KeyDirectory:
    """Verified entries, one per organization, and the key → organization index."""

    def __init__(self, signed: Iterable[SignedEntry], trust: OrgTrust, now_ms: int) -> None:
        self._signed: dict[str, SignedEntry] = {}
        self._owner: dict[bytes, str] = {}
        for s in signed:
            entry = trust.verify_entry(s, now_ms)
            if entry.org_id in self._signed:
                raise ConfigError(f"two directory entries for {entry.org_id}")
            self._add(s)

    def _add(self, s: SignedEntry) -> None:
        for k in s.entry.public_keys:
            owner = self._owner.get(k)
            if owner is not None and owner != s.entry.org_id:
                raise ForeignKey(f"{s.entry.org_id} claims a key bound to {owner}")
        old = self._signed.get(s.entry.org_id)
        if old is not None:
            for k in old.entry.public_keys:
                del self._owner[k]
        self._signed[s.entry.org_id] = s
        for k in s.entry.public_keys:
            self._owner[k] = s.entry.org_id

    def org_of(self, key: bytes) -> str | None:
        return self._owner.get(key)

    def entry(self, org_id: str) -> DirectoryEntry | None:
        s = self._signed.get(org_id)
        return s.entry if s is not None else None

    def signed_entries(self) -> list[SignedEntry]:
        return [self._signed[o] for o in sorted(self._signed)]

    def updated(self, signed: SignedEntry, trust: OrgTrust, now_ms: int, *,
                announcer_org: str) -> KeyDirectory:
        """A copy with ``signed`` in force, or a refusal that leaves this one unchanged."""
        if signed.entry.org_id != announcer_org:
            raise ForeignKey(f"the manager of {announcer_org} may only announce its own "
                             f"organization, not {signed.entry.org_id}")
        entry = trust.verify_entry(signed, now_ms)
        held = self.entry(entry.org_id)
        if held is not None and entry.sequence <= held.sequence:
            raise StaleEntry(f"entry {entry.sequence} of {entry.org_id} is not newer than "
                             f"{held.sequence}")
        copy = KeyDirectory((), trust, now_ms)
        copy._signed = dict(self._signed)
        copy._owner = dict(self._owner)
        copy._add(signed)
        return copy


class DirectorySource(Protocol):
    """Where the authoritative directory comes from: a signed static file now; the
    chain's configuration or the control plane later (the lead wires that)."""

    def load(self, trust: OrgTrust, now_ms: int) -> KeyDirectory: ...


class SignedDirectoryFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, trust: OrgTrust, now_ms: int) -> KeyDirectory:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the key directory {self.path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("version") != 1 \
                or not isinstance(doc.get("entries"), list):
            raise ConfigError(f"{self.path}: not a version 1 key directory")
        try:
            entries = [SignedEntry.from_json(e) for e in doc["entries"]]
        except Malformed as exc:
            raise ConfigError(f"{self.path}: {exc.message}") from exc
        return KeyDirectory(entries, trust, now_ms)


def write_directory_file(path: Path, entries: Iterable[SignedEntry]) -> None:
    path.write_text(json.dumps({"version": 1, "entries": [e.to_json() for e in entries]},
                               indent=2))
