"""The transaction manager's rules, without the web: send, receive, store-raw and
send-signed for the member's own node; push and announce for other members' managers.

Send is synchronous and all-or-nothing *for the caller* (Tessera's behaviour): the
envelope is stored durably first, then pushed to every recipient organization's manager
in parallel, each retried with exponential backoff until ``send_timeout_s``. The hash is
returned only when every recipient acknowledged (its store committed). Otherwise
``RecipientUnreachable`` names the organizations and reasons, the deliveries stay
recorded as ``failed``, and the node must not put the hash on chain — nothing is
retried behind its back, because a payload that no transaction references is useless
to its recipients. The caller may send again (a new envelope, a new hash).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consortia.privacy.box import (
    EncryptedPayload,
    add_recipients,
    decode_payload,
    open_payload,
    public_bytes,
    seal,
)
from consortia.privacy.directory import KeyDirectory, OrgTrust, SignedEntry
from consortia.privacy.errors import (
    NotAddressed,
    NotAParticipant,
    RecipientUnreachable,
    Tampered,
    UnknownRecipient,
    UnknownSender,
)
from consortia.privacy.peers import DeliveryError, PeerClient
from consortia.privacy.store import DELIVERED, FAILED, PENDING, Delivery, PrivacyStore
from consortia.types.errors import ConfigError, Malformed, TooLarge

PUSH_PATH = "/v1/push"
ANNOUNCE_PATH = "/v1/partyinfo"
PUSH_TYPE = "application/vnd.consortia.privacy-payload"


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 1024 * 1024
    """Largest plaintext a node may send; an envelope may be this plus its boxes."""
    max_recipients: int = 64
    send_timeout_s: float = 10.0
    """How long a send keeps retrying an unreachable recipient before it fails."""
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 2.0

    @property
    def max_envelope_bytes(self) -> int:
        return self.max_payload_bytes + 1024 + 160 * (self.max_recipients + 1)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Manager:
    def __init__(self, org_id: str, keys: Sequence[X25519PrivateKey], store: PrivacyStore,
                 directory: KeyDirectory, trust: OrgTrust, peers: PeerClient,
                 limits: Limits, *, now_ms: Callable[[], int] = _now_ms) -> None:
        if not keys:
            raise ConfigError("a transaction manager needs at least one key")
        self.org_id = org_id
        self._keys = {public_bytes(k): k for k in keys}
        self._store = store
        self.trust = trust
        self._peers = peers
        self.limits = limits
        self._now_ms = now_ms
        for raw in store.directory_updates():  # announcements accepted before a restart
            s = SignedEntry.from_json(json.loads(raw))
            held = directory.entry(s.entry.org_id)
            if held is None or s.entry.sequence > held.sequence:
                directory = directory.updated(s, trust, now_ms(), announcer_org=s.entry.org_id)
        self.directory = directory
        for pub in self._keys:
            if directory.org_of(pub) != org_id:
                raise ConfigError("the directory does not bind this manager's key "
                                  f"{pub.hex()[:16]}… to {org_id}")

    @property
    def public_keys(self) -> list[bytes]:
        return list(self._keys)

    # -- the node's API -------------------------------------------------------------------

    def _sender(self, sender: bytes | None) -> X25519PrivateKey:
        if sender is None:
            return next(iter(self._keys.values()))
        key = self._keys.get(sender)
        if key is None:
            raise UnknownSender("'from' is not a key of this transaction manager")
        return key

    def _check_payload(self, payload: bytes) -> None:
        if len(payload) > self.limits.max_payload_bytes:
            raise TooLarge(f"payload of {len(payload)} bytes exceeds "
                           f"{self.limits.max_payload_bytes}")

    def _recipient_orgs(self, private_for: Sequence[bytes]) -> dict[str, list[bytes]]:
        """Recipient keys grouped by the organization the directory binds them to."""
        if len(set(private_for)) > self.limits.max_recipients:
            raise Malformed(f"at most {self.limits.max_recipients} recipients")
        orgs: dict[str, list[bytes]] = {}
        for key in dict.fromkeys(private_for):
            org = self.directory.org_of(key)
            if org is None:
                raise UnknownRecipient(f"no member's manager holds key {key.hex()[:16]}…")
            if org == self.org_id and key not in self._keys:
                raise UnknownRecipient(f"key {key.hex()[:16]}… is bound to this "
                                       "organization but this manager does not hold it")
            if org != self.org_id:
                orgs.setdefault(org, []).append(key)
        return orgs

    def send(self, payload: bytes, private_for: Sequence[bytes],
             sender: bytes | None = None) -> bytes:
        """Encrypt for the sender and ``private_for``, store, deliver; the hash."""
        self._check_payload(payload)
        key = self._sender(sender)
        orgs = self._recipient_orgs(private_for)
        ep = seal(payload, key, [public_bytes(key), *private_for])
        self._store.put(ep, "local", self._now_ms())
        self._deliver(ep, orgs)
        return ep.hash

    def store_raw(self, payload: bytes, sender: bytes | None = None) -> bytes:
        """Encrypt for the sender only and store: the hash a signed private transaction
        will carry before its recipients are known (quorum's ``storeraw``)."""
        self._check_payload(payload)
        key = self._sender(sender)
        return self._store.put(seal(payload, key, [public_bytes(key)]), "local",
                               self._now_ms()).hash

    def send_signed(self, payload_hash: bytes, private_for: Sequence[bytes]) -> bytes:
        """Deliver a stored raw payload to ``private_for`` under the same hash."""
        ep = self._store.get(payload_hash)
        key = self._keys.get(ep.sender) if ep is not None else None
        if ep is None or key is None:
            raise NotAParticipant("no payload sent from this manager under that hash")
        orgs = self._recipient_orgs(private_for)
        ep = self._store.put(add_recipients(ep, key, list(private_for)), "local",
                             self._now_ms())
        self._deliver(ep, orgs)
        return ep.hash

    def receive(self, payload_hash: bytes, to: bytes | None = None) -> tuple[bytes, bytes]:
        """(plaintext, sender key) for a participant; ``NotAParticipant`` otherwise."""
        if to is not None and to not in self._keys:
            raise UnknownSender("'to' is not a key of this transaction manager")
        ep = self._store.get(payload_hash)
        if ep is None:
            raise NotAParticipant("not a participant of that payload")
        candidates = [to] if to is not None else list(self._keys)
        for pub in candidates:
            if pub in ep.recipients():
                assert pub is not None
                return open_payload(ep, self._keys[pub]), ep.sender
        raise NotAParticipant("not a participant of that payload")

    def deliveries(self, payload_hash: bytes) -> list[Delivery]:
        if self._store.get(payload_hash) is None:
            raise NotAParticipant("not a participant of that payload")
        return self._store.deliveries(payload_hash)

    def _deliver(self, ep: EncryptedPayload, orgs: dict[str, list[bytes]]) -> None:
        if not orgs:
            return
        now = self._now_ms()
        for org in orgs:
            self._store.record_delivery(ep.hash, org, PENDING, 0, "", now)
        with ThreadPoolExecutor(max_workers=min(8, len(orgs)),
                                thread_name_prefix="push") as pool:
            results = dict(zip(orgs, pool.map(
                lambda o: self._push_with_retry(ep.hash, o, ep.for_recipients(orgs[o])),
                orgs), strict=True))
        failures = {org: why for org, why in results.items() if why is not None}
        if failures:
            raise RecipientUnreachable(
                "not every recipient's manager acknowledged the payload: " +
                "; ".join(f"{o}: {w}" for o, w in sorted(failures.items())),
                payload_hash=ep.hash, failures=failures)

    def _push_with_retry(self, payload_hash: bytes, org: str,
                         ep: EncryptedPayload) -> str | None:
        """None when ``org`` acknowledged; else the last reason. Records every attempt."""
        entry = self.directory.entry(org)
        assert entry is not None
        body = ep.encode()
        deadline = time.monotonic() + self.limits.send_timeout_s
        delay = self.limits.backoff_initial_s
        attempts = 0
        while True:
            attempts += 1
            try:
                answer = self._peers.post(org, entry.endpoint, PUSH_PATH, body, PUSH_TYPE)
                if answer.get("hash") != payload_hash.hex():
                    raise DeliveryError("the peer acknowledged another hash", permanent=True)
            except DeliveryError as exc:
                final = exc.permanent or time.monotonic() + delay > deadline
                self._store.record_delivery(payload_hash, org, FAILED if final else PENDING,
                                            attempts, exc.reason, self._now_ms())
                if final:
                    return exc.reason
                time.sleep(delay)
                delay = min(delay * 2, self.limits.backoff_max_s)
                continue
            self._store.record_delivery(payload_hash, org, DELIVERED, attempts, "",
                                        self._now_ms())
            return None

    # -- the peers' API -------------------------------------------------------------------

    def identify_peer(self, cert_der: bytes) -> str:
        """The organization whose manager presented ``cert_der`` (``PeerRefused``)."""
        return self.trust.identify_manager(cert_der, self._now_ms())

    def accept_push(self, peer_org: str, body: bytes) -> bytes:
        """Store a payload pushed by the manager of ``peer_org`` (already authenticated by
        its mTLS certificate); its hash. Refused, storing nothing, unless its sender key
        belongs to ``peer_org``, it holds a box for a key of ours, and those boxes open."""
        if len(body) > self.limits.max_envelope_bytes:
            raise TooLarge(f"envelope of {len(body)} bytes exceeds "
                           f"{self.limits.max_envelope_bytes}")
        ep = decode_payload(body, max_bytes=self.limits.max_envelope_bytes)
        owner = self.directory.org_of(ep.sender)
        if owner != peer_org:
            raise Tampered(f"the manager of {peer_org} pushed a payload from a key of "
                           f"{owner or 'no member'}")
        mine = ep.for_recipients(self._keys)
        if not mine.boxes:
            raise NotAddressed("the payload holds no box for a key of this manager")
        for box in mine.boxes:  # prove every box before storing it
            open_payload(mine, self._keys[box.recipient])
        return self._store.put(mine, f"peer:{peer_org}", self._now_ms()).hash

    def accept_announce(self, peer_org: str, signed: SignedEntry) -> None:
        """Take a newer signed entry of the announcing manager's own organization."""
        updated = self.directory.updated(signed, self.trust, self._now_ms(),
                                         announcer_org=peer_org)
        self._store.save_directory_update(signed.entry.org_id, signed.entry.sequence,
                                          json.dumps(signed.to_json()))
        self.directory = updated
