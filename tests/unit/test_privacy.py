"""The transaction manager's pieces without processes: envelope, key files, directory,
and the manager's push/announce rules over a real SQLite store."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.p2p.tls import NodeCredentials
from consortia.privacy import keys as keyfiles
from consortia.privacy.box import (
    add_recipients,
    decode_payload,
    open_payload,
    public_bytes,
    seal,
)
from consortia.privacy.directory import (
    DirectoryEntry,
    KeyDirectory,
    OrgTrust,
    SignedDirectoryFile,
    SignedEntry,
    sign_entry,
    write_directory_file,
)
from consortia.privacy.errors import (
    ForeignKey,
    InvalidEntry,
    NotAddressed,
    NotAParticipant,
    PeerRefused,
    StaleEntry,
    Tampered,
    UnknownRecipient,
)
from consortia.privacy.manager import Limits, Manager
from consortia.privacy.peers import PeerClient
from consortia.privacy.store import PrivacyStore
from consortia.types.config import Role
from consortia.types.errors import ConfigError, Malformed, TooLarge

NOW = 0  # set per test from the CA's validity


# -- envelope ---------------------------------------------------------------------------


def test_round_trip_each_recipient_opens_and_the_hash_is_sha3_512_of_the_ciphertext() -> None:
    import hashlib

    a, b, c = keyfiles.generate(), keyfiles.generate(), keyfiles.generate()
    ep = seal(b"calldata", a, [public_bytes(a), public_bytes(b)])
    assert ep.hash == hashlib.sha3_512(ep.ciphertext).digest()
    again = decode_payload(ep.encode(), max_bytes=10_000)
    assert again == ep
    assert open_payload(again, a) == b"calldata"
    assert open_payload(again, b) == b"calldata"
    with pytest.raises(NotAParticipant):
        open_payload(again, c)
    only_b = ep.for_recipients([public_bytes(b)])
    assert only_b.recipients() == (public_bytes(b),) and only_b.hash == ep.hash
    with pytest.raises(NotAParticipant):
        open_payload(only_b, a)


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "wrapped", "salt", "sender"])
def test_any_tampered_byte_is_refused(field: str) -> None:
    a, b = keyfiles.generate(), keyfiles.generate()
    ep = seal(b"calldata", a, [public_bytes(b)])
    box = ep.boxes[0]
    flip = lambda x: bytes([x[0] ^ 1]) + x[1:]  # noqa: E731
    from dataclasses import replace
    if field == "ciphertext":
        bad = replace(ep, ciphertext=flip(ep.ciphertext))
    elif field == "nonce":
        bad = replace(ep, nonce=flip(ep.nonce))
    elif field == "sender":  # another sender's key: the agreement no longer matches
        bad = replace(ep, sender=public_bytes(keyfiles.generate()))
    else:
        attr = "wrapped_key" if field == "wrapped" else "salt"
        bad = replace(ep, boxes=(replace(box, **{attr: flip(getattr(box, attr))}),))
    with pytest.raises(Tampered):
        open_payload(bad, b)


def test_a_box_moved_onto_another_ciphertext_does_not_open() -> None:
    a, b = keyfiles.generate(), keyfiles.generate()
    one = seal(b"one", a, [public_bytes(b)])
    two = seal(b"two", a, [public_bytes(b)])
    from dataclasses import replace
    with pytest.raises(Tampered):
        open_payload(replace(two, boxes=one.boxes), b)


def test_decode_is_strict() -> None:
    a, b = keyfiles.generate(), keyfiles.generate()
    ep = seal(b"x" * 100, a, [public_bytes(b)])
    with pytest.raises(TooLarge):
        decode_payload(ep.encode(), max_bytes=50)
    with pytest.raises(Malformed):
        decode_payload(ep.encode() + b"\x00", max_bytes=10_000)
    with pytest.raises(Malformed):
        decode_payload(b"\x93\x01\x02\x03", max_bytes=10_000)
    from dataclasses import replace
    twice = replace(ep, boxes=ep.boxes * 2)
    with pytest.raises(Malformed):
        decode_payload(twice.encode(), max_bytes=10_000)


def test_add_recipients_keeps_the_hash_and_only_the_sender_can() -> None:
    a, b = keyfiles.generate(), keyfiles.generate()
    raw = seal(b"signed tx data", a, [public_bytes(a)])
    full = add_recipients(raw, a, [public_bytes(b)])
    assert full.hash == raw.hash
    assert open_payload(full, b) == b"signed tx data"
    with pytest.raises(NotAParticipant):
        add_recipients(raw, b, [public_bytes(b)])


# -- key files ----------------------------------------------------------------------------


def test_key_file_round_trip_wrong_passphrase_and_swapped_public(tmp_path: Path) -> None:
    key = keyfiles.generate()
    path = tmp_path / "tm.key"
    keyfiles.save_key(path, key, b"pass phrase")
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"private" not in path.read_bytes()
    assert public_bytes(keyfiles.load_key(path, b"pass phrase")) == public_bytes(key)
    with pytest.raises(ConfigError, match="wrong passphrase"):
        keyfiles.load_key(path, b"other")
    doc = json.loads(path.read_text())
    doc["public"] = base64.b64encode(public_bytes(keyfiles.generate())).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError):
        keyfiles.load_key(path, b"pass phrase")
    with pytest.raises(ConfigError):
        keyfiles.save_key(tmp_path / "k2", key, b"")


# -- directory ----------------------------------------------------------------------------


class Org:
    def __init__(self, org_id: str) -> None:
        self.id = org_id
        self.ca = CertificateAuthority.create(org_id)
        self.admin_key, admin = self.ca.issue_identity(f"{org_id}-admin", Role.ADMIN)
        self.admin_cert = cert_der(admin)
        self.tm_key = keyfiles.generate()
        self.tm_pub = public_bytes(self.tm_key)

    def entry(self, seq: int = 1, keys: tuple[bytes, ...] | None = None,
              org_id: str | None = None) -> SignedEntry:
        e = DirectoryEntry(org_id or self.id, seq, f"127.0.0.1:{20000 + seq}",
                           keys or (self.tm_pub,))
        return sign_entry(e, self.admin_key, self.admin_cert)


@pytest.fixture(scope="module")
def orgs() -> tuple[Org, Org, Org]:
    return Org("org1"), Org("org2"), Org("org3")


def _now(orgs: tuple[Org, ...]) -> int:
    return int(orgs[0].ca.cert.not_valid_before_utc.timestamp() * 1000) + 10 * 60 * 1000


def _trust(orgs: tuple[Org, ...]) -> OrgTrust:
    return OrgTrust.from_ca_certs({o.id: o.ca.cert_der for o in orgs})


def test_directory_binds_keys_to_orgs_from_admin_signatures(orgs: tuple[Org, Org, Org],
                                                           tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    write_directory_file(path, [o.entry() for o in orgs])
    d = SignedDirectoryFile(path).load(_trust(orgs), _now(orgs))
    assert [d.org_of(o.tm_pub) for o in orgs] == ["org1", "org2", "org3"]
    assert d.org_of(b"\x00" * 32) is None


def test_entry_signed_by_another_orgs_admin_is_refused(orgs: tuple[Org, Org, Org]) -> None:
    b, c = orgs[1], orgs[2]
    forged = sign_entry(DirectoryEntry("org2", 2, "evil:1", (c.tm_pub,)), c.admin_key,
                        c.admin_cert)
    with pytest.raises(InvalidEntry, match="signed by an admin of org3"):
        _trust(orgs).verify_entry(forged, _now(orgs))
    del b


def test_entry_signed_by_a_non_admin_or_badly_is_refused(orgs: tuple[Org, Org, Org]) -> None:
    a = orgs[0]
    peer_key, peer_cert = a.ca.issue_identity("org1-tm", Role.PEER)
    e = DirectoryEntry("org1", 1, "h:1", (a.tm_pub,))
    with pytest.raises(InvalidEntry, match="signer refused"):
        _trust(orgs).verify_entry(sign_entry(e, peer_key, cert_der(peer_cert)), _now(orgs))
    good = a.entry()
    bad = SignedEntry(DirectoryEntry("org1", 1, "other:1", (a.tm_pub,)), good.signer_cert,
                      good.signature)
    with pytest.raises(InvalidEntry, match="bad signature"):
        _trust(orgs).verify_entry(bad, _now(orgs))
    outsider = CertificateAuthority.create("org1")  # same name, unknown CA
    k, cert = outsider.issue_identity("admin", Role.ADMIN)
    with pytest.raises(InvalidEntry):
        _trust(orgs).verify_entry(sign_entry(e, k, cert_der(cert)), _now(orgs))


def test_a_key_claimed_by_two_orgs_refuses_the_directory(orgs: tuple[Org, Org, Org]) -> None:
    a, b, c = orgs
    with pytest.raises(ForeignKey):
        KeyDirectory([a.entry(), b.entry(), c.entry(keys=(b.tm_pub,))], _trust(orgs),
                     _now(orgs))


def test_announcements_only_for_own_org_newer_and_without_foreign_keys(
        orgs: tuple[Org, Org, Org]) -> None:
    _, b, c = orgs
    trust, now = _trust(orgs), _now(orgs)
    d = KeyDirectory([o.entry() for o in orgs], trust, now)
    with pytest.raises(ForeignKey):  # org3's manager claims org2's key for itself
        d.updated(c.entry(seq=2, keys=(b.tm_pub,)), trust, now, announcer_org="org3")
    with pytest.raises(ForeignKey):  # org3's manager relays an entry of org2
        d.updated(b.entry(seq=2), trust, now, announcer_org="org3")
    with pytest.raises(StaleEntry):
        d.updated(c.entry(seq=1), trust, now, announcer_org="org3")
    assert d.org_of(b.tm_pub) == "org2" and d.entry("org3") == c.entry().entry
    rotated = public_bytes(keyfiles.generate())
    d2 = d.updated(c.entry(seq=2, keys=(rotated,)), trust, now, announcer_org="org3")
    assert d2.org_of(rotated) == "org3" and d2.org_of(c.tm_pub) is None
    assert d.org_of(c.tm_pub) == "org3"  # the original is unchanged


# -- manager rules (no network: pushes are handed in directly) ------------------------------


def _manager(org: Org, orgs: tuple[Org, ...], tmp_path: Path) -> Manager:
    trust, now = _trust(orgs), _now(orgs)
    d = KeyDirectory([o.entry() for o in orgs], trust, now)
    tls_key, tls_cert = org.ca.issue_identity(f"{org.id}-tm", Role.PEER)
    peers = PeerClient(NodeCredentials.from_signing_key(cert_der(tls_cert), tls_key), trust,
                       timeout_s=1.0)
    store = PrivacyStore(tmp_path / f"{org.id}.sqlite3", max_payload_bytes=1 << 20)
    return Manager(org.id, [org.tm_key], store, d, trust, peers, Limits(),
                   now_ms=lambda: now)


def test_push_rules(orgs: tuple[Org, Org, Org], tmp_path: Path) -> None:
    a, b, c = orgs
    mb = _manager(b, orgs, tmp_path)
    ep = seal(b"for b", a.tm_key, [a.tm_pub, b.tm_pub])
    # addressed to nobody here
    with pytest.raises(NotAddressed):
        mb.accept_push("org1", seal(b"for c", a.tm_key, [c.tm_pub]).encode())
    # the pushing manager's org must own the sender key
    with pytest.raises(Tampered, match="org3 pushed a payload from a key of org1"):
        mb.accept_push("org3", ep.encode())
    # a box that does not open is refused, nothing stored
    from dataclasses import replace
    with pytest.raises(Tampered):
        mb.accept_push("org1", replace(ep, ciphertext=ep.ciphertext[:-1] + b"\x00").encode())
    assert mb._store.count() == 0
    h = mb.accept_push("org1", ep.encode())
    assert h == ep.hash
    assert mb.accept_push("org1", ep.encode()) == h  # replay: same answer, one row
    assert mb._store.count() == 1
    stored = mb._store.get(h)
    assert stored is not None and stored.recipients() == (b.tm_pub,)  # only its own box
    assert mb.receive(h) == (b"for b", a.tm_pub)
    with pytest.raises(NotAParticipant):
        mb.receive(b"\x01" * 64)


def test_send_refuses_unknown_recipients_before_storing(orgs: tuple[Org, Org, Org],
                                                        tmp_path: Path) -> None:
    a = orgs[0]
    ma = _manager(a, orgs, tmp_path)
    with pytest.raises(UnknownRecipient):
        ma.send(b"x", [public_bytes(keyfiles.generate())])
    with pytest.raises(TooLarge):
        ma.send(b"x" * (Limits().max_payload_bytes + 1), [])
    assert ma._store.count() == 0
    h = ma.send(b"only me", [])  # privateFor empty: stored for the sender, no delivery
    assert ma.receive(h) == (b"only me", a.tm_pub)


def test_a_manager_certificate_must_be_a_peer_of_a_member_org(orgs: tuple[Org, Org, Org]
                                                             ) -> None:
    a = orgs[0]
    _, client_cert = a.ca.issue_identity("someone", Role.CLIENT)
    with pytest.raises(PeerRefused):
        _trust(orgs).identify_manager(cert_der(client_cert), _now(orgs))
    _, tm = a.ca.issue_identity("org1-tm", Role.PEER)
    assert _trust(orgs).identify_manager(cert_der(tm), _now(orgs)) == "org1"
