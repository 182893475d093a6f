"""Organization CAs, membership validation, keystores and CRL configuration updates
(identity/ca.py, membership.py, keystore.py, config_update.py)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from consortia.crypto.p256 import native_signing_key
from consortia.identity import config_update
from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.identity.keystore import FileKeystore
from consortia.identity.membership import Membership, load_crl, parse_role
from consortia.sdk.identity import Identity
from consortia.sdk.network import LocalNetwork, init_network
from consortia.types.config import ChainConfig, OrgConfig, Role
from consortia.types.errors import ConfigError, Unauthorized
from consortia.types.tx import ConfigBody, CrlUpdate, HashRecord, NotaryMeta, Payload, TxType
from tests.unit.conftest import CHAIN_ID, NOW_MS, SUITE, World, make_org

WRITERS = (Role.CLIENT, Role.ADMIN)
DAY = dt.timedelta(days=1)


def _cert(ident: Identity) -> x509.Certificate:
    return x509.load_der_x509_certificate(ident.cert_der)


def _serial(ident: Identity) -> int:
    return _cert(ident).serial_number


def _code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


# -- the CA --------------------------------------------------------------------------------


def test_issued_certificate_subject_and_extensions(world: World) -> None:
    cert = _cert(world.org1["alice"])
    attrs = {a.oid: a.value for a in cert.subject}
    assert attrs[NameOID.ORGANIZATION_NAME] == "org1"
    assert attrs[NameOID.ORGANIZATIONAL_UNIT_NAME] == "client"
    assert attrs[NameOID.COMMON_NAME] == "alice"
    assert cert.issuer == world.org1.ca.cert.subject
    cert.verify_directly_issued_by(world.org1.ca.cert)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert parse_role(cert) is Role.CLIENT
    assert parse_role(_cert(world.org1["validator0"])) is Role.VALIDATOR
    ca_bc = world.org1.ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert ca_bc.ca and ca_bc.path_length == 0


def test_ca_refuses_bad_inputs() -> None:
    for bad in ("", "a/b", "x" * 65, "org 1"):
        with pytest.raises(ConfigError):
            CertificateAuthority.create(bad)
    ca = CertificateAuthority.create("org9")
    with pytest.raises(ConfigError):
        ca.issue("", Role.CLIENT, SUITE.generate_key().public_key())
    with pytest.raises(ConfigError):
        ca.issue("n" * 65, Role.CLIENT, SUITE.generate_key().public_key())


def test_membership_accepts_members_for_allowed_roles(world: World) -> None:
    m = Membership(world.config)
    member = m.validate(world.org1["alice"].cert_der, WRITERS, NOW_MS)
    assert (member.org_id, member.role, member.name) == ("org1", Role.CLIENT, "alice")
    assert member.serial == _serial(world.org1["alice"])
    assert member.fingerprint == SUITE.hash(world.org1["alice"].cert_der)
    assert member.public_key.public_bytes() == world.org1["alice"].key.public_key().public_bytes()
    assert m.validate(world.org2["admin"].cert_der, WRITERS, NOW_MS).role is Role.ADMIN
    assert m.validate(world.org1["validator0"].cert_der, (Role.VALIDATOR,), NOW_MS).org_id == "org1"
    # cached identification gives the same answer
    assert m.identify(world.org1["alice"].cert_der) is m.identify(world.org1["alice"].cert_der)


@pytest.mark.parametrize("name", ["peer0", "validator0"])
def test_wrong_role(world: World, name: str) -> None:
    with pytest.raises(Unauthorized) as e:
        Membership(world.config).validate(world.org1[name].cert_der, WRITERS, NOW_MS)
    assert _code(e) == "wrong_role"
    with pytest.raises(Unauthorized) as e:
        Membership(world.config).validate(world.org1["alice"].cert_der, (Role.ADMIN,), NOW_MS)
    assert _code(e) == "wrong_role"


def test_certificate_of_an_org_not_in_the_config_is_unknown(world: World) -> None:
    outsider = make_org("org3")
    with pytest.raises(Unauthorized) as e:
        Membership(world.config).validate(outsider["alice"].cert_der, WRITERS, NOW_MS)
    assert _code(e) == "unknown_identity"


def test_impostor_ca_with_the_same_name_is_unknown(world: World) -> None:
    impostor = make_org("org1")  # a second "org1" CA, same subject name, other key
    assert impostor.ca.cert.subject == world.org1.ca.cert.subject
    with pytest.raises(Unauthorized) as e:
        Membership(world.config).validate(impostor["admin"].cert_der, WRITERS, NOW_MS)
    assert _code(e) == "unknown_identity"


def test_certificate_naming_another_org_is_unknown(world: World) -> None:
    """Signed by org1's CA but claiming O=org2: refused."""
    ca = world.org1.ca
    key = SUITE.generate_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mallory"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org2")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
            .public_key(key.public_key().native).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + DAY)
            .sign(native_signing_key(ca.key), hashes.SHA256()))
    with pytest.raises(Unauthorized) as e:
        Membership(world.config).validate(cert_der(cert), WRITERS, NOW_MS)
    assert _code(e) == "unknown_identity"


def test_garbage_and_ca_certificates_cannot_sign(world: World) -> None:
    m = Membership(world.config)
    with pytest.raises(Unauthorized) as e:
        m.validate(b"not a certificate", WRITERS, NOW_MS)
    assert _code(e) == "unknown_identity"
    with pytest.raises(Unauthorized) as e:
        m.validate(world.org1.ca.cert_der, tuple(Role), NOW_MS)
    assert _code(e) == "wrong_role"


def test_expired_and_not_yet_valid_certificates(world: World) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = world.org1.ca
    _, old = ca.issue_identity("old", Role.CLIENT, not_before=now - 10 * DAY,
                               not_after=now - DAY)
    _, future = ca.issue_identity("future", Role.CLIENT, not_before=now + 2 * DAY,
                                  not_after=now + 10 * DAY)
    m = Membership(world.config)
    for c in (old, future):
        with pytest.raises(Unauthorized) as e:
            m.validate(cert_der(c), WRITERS, NOW_MS)
        assert _code(e) == "expired_identity"
    # validity is judged at the time of the action, bounded by the CA's own window
    m.validate(cert_der(future), WRITERS, NOW_MS + 3 * 86_400_000)
    ca_start = int(ca.cert.not_valid_before_utc.timestamp() * 1000)
    with pytest.raises(Unauthorized) as e:
        m.validate(cert_der(old), WRITERS, ca_start - 1)
    assert _code(e) == "expired_identity"
    ok = world.org1["alice"]
    member = m.identify(ok.cert_der)
    m.validate(ok.cert_der, WRITERS, member.not_after_ms)
    with pytest.raises(Unauthorized) as e:
        m.validate(ok.cert_der, WRITERS, member.not_after_ms + 1)
    assert _code(e) == "expired_identity"


def test_revocation_through_the_crl_in_the_config(fresh_world: World) -> None:
    w = fresh_world
    bob = w.org1["bob"]
    Membership(w.config).validate(bob.cert_der, WRITERS, NOW_MS)
    w.org1.ca.revoke(_serial(bob))
    crl = w.org1.ca.crl()
    revoked, number = load_crl(w.org1.ca.cert, crl)
    assert revoked == frozenset({_serial(bob)}) and number == 1
    cfg = w.config.with_org(OrgConfig("org1", w.org1.ca.cert_der, crl))
    assert cfg.sequence == w.config.sequence + 1
    assert cfg.org("org1").crl == crl and cfg.org("org2") == w.config.org("org2")
    m = Membership(cfg)
    with pytest.raises(Unauthorized) as e:
        m.validate(bob.cert_der, WRITERS, NOW_MS)
    assert _code(e) == "revoked_identity"
    assert m.org_crl_number("org1") == 1 and m.org_crl_number("org2") == 0
    # others of the same org and the other org are unaffected
    m.validate(w.org1["alice"].cert_der, WRITERS, NOW_MS)
    m.validate(w.org2["bob"].cert_der, WRITERS, NOW_MS)


def test_crl_of_another_ca_is_refused(fresh_world: World) -> None:
    w = fresh_world
    with pytest.raises(ConfigError, match="issuer"):
        load_crl(w.org1.ca.cert, w.org2.ca.crl())
    impostor = CertificateAuthority.create("org1")
    with pytest.raises(ConfigError, match="signature"):
        load_crl(w.org1.ca.cert, impostor.crl())
    with pytest.raises(ConfigError):
        load_crl(w.org1.ca.cert, b"not der")
    # a configuration carrying a foreign CRL cannot be loaded at all
    with pytest.raises(ConfigError):
        Membership(w.config.with_org(OrgConfig("org1", w.org1.ca.cert_der, impostor.crl())))
    with pytest.raises(ConfigError):
        Membership(w.config.with_org(OrgConfig("org1", b"junk")))


def test_ca_save_load_round_trip(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("org7")
    _, cert = ca.issue_identity("carol", Role.CLIENT)
    ca.revoke(cert.serial_number, at=dt.datetime(2030, 1, 2, tzinfo=dt.UTC))
    ca.crl()
    ca.save(tmp_path / "ca", b"s3cret")
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600
    assert b"ENCRYPTED" in (tmp_path / "ca" / "ca-key.pem").read_bytes()
    loaded = CertificateAuthority.load(tmp_path / "ca", b"s3cret")
    assert loaded.org_id == "org7"
    assert loaded.cert_der == ca.cert_der
    assert loaded.revoked == ca.revoked == {cert.serial_number: 1893542400000}
    assert loaded.crl_number == 1
    assert loaded.key.public_key().public_bytes() == ca.key.public_key().public_bytes()
    # the loaded CA continues the CRL numbering and still signs for the same root
    revoked, number = load_crl(ca.cert, loaded.crl())
    assert number == 2 and revoked == {cert.serial_number}
    _, c2 = loaded.issue_identity("dave", Role.ADMIN)
    c2.verify_directly_issued_by(ca.cert)
    with pytest.raises(ConfigError, match="wrong passphrase"):
        CertificateAuthority.load(tmp_path / "ca", b"wrong")
    with pytest.raises(ConfigError):
        ca.save(tmp_path / "ca2", b"")


# -- the keystore --------------------------------------------------------------------------


def test_keystore_round_trip_and_permissions(tmp_path: Path, world: World) -> None:
    ks = FileKeystore(tmp_path / "ks")
    assert ks.names() == []
    alice = world.org1["alice"]
    d = ks.save("alice", alice.key, _cert(alice), world.org1.ca.cert, b"pw")
    assert stat.S_IMODE((d / "key.pem").stat().st_mode) == 0o600
    assert b"ENCRYPTED" in (d / "key.pem").read_bytes()
    assert ks.names() == ["alice"]
    stored = ks.load("alice", b"pw")
    assert stored.cert_der == alice.cert_der and stored.ca_der == world.org1.ca.cert_der
    assert stored.key.public_key().public_bytes() == alice.key.public_key().public_bytes()
    ident = Identity.load(tmp_path / "ks", "alice", "pw")
    assert (ident.org_id, ident.name, ident.role) == ("org1", "alice", "client")
    with pytest.raises(ConfigError, match="passphrase"):
        ks.load("alice", b"wrong")
    with pytest.raises(ConfigError):
        ks.load("nobody", b"pw")
    for bad in ("", "a/b", ".hidden", ".."):
        with pytest.raises(ConfigError):
            ks.path(bad)


def test_keystore_refuses_empty_passphrase(tmp_path: Path, world: World) -> None:
    alice = world.org1["alice"]
    with pytest.raises(ConfigError):
        FileKeystore(tmp_path).save("alice", alice.key, _cert(alice), world.org1.ca.cert, b"")
    assert not (tmp_path / "alice" / "key.pem").exists()


@pytest.mark.parametrize("what", ["keystore", "ca"])
def test_resave_tightens_key_file_mode(tmp_path: Path, world: World, what: str) -> None:
    """Saving over a key file restored with loose permissions (e.g. `cp -r` from a backup)
    must leave it 0600, as the keystore and the CA document."""
    alice = world.org1["alice"]
    key_file = tmp_path / "alice" / "key.pem" if what == "keystore" else tmp_path / "ca-key.pem"
    key_file.parent.mkdir(exist_ok=True)
    key_file.write_bytes(b"old")
    key_file.chmod(0o644)
    if what == "keystore":
        FileKeystore(tmp_path).save("alice", alice.key, _cert(alice), world.org1.ca.cert, b"pw")
    else:
        CertificateAuthority.create("org8").save(tmp_path, b"pw")
    assert key_file.read_bytes() != b"old"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


# -- configuration updates -----------------------------------------------------------------


def _crl_payload(org_id: str, crl: bytes) -> Payload:
    return Payload(CHAIN_ID, TxType.CRL_UPDATE, bytes(16), NOW_MS, CrlUpdate(org_id, crl))


def test_admin_publishes_newer_crl(fresh_world: World) -> None:
    w = fresh_world
    m = Membership(w.config)
    w.org1.ca.revoke(_serial(w.org1["bob"]))
    crl = w.org1.ca.crl()
    new = config_update.apply(w.config, m, w.org1["admin"].cert_der, _crl_payload("org1", crl))
    assert new.sequence == w.config.sequence + 1
    assert new.org("org1").crl == crl and new.org("org1").ca_cert == w.org1.ca.cert_der
    assert new.org("org2") == w.config.org("org2")
    assert new.validators == w.config.validators
    with pytest.raises(Unauthorized) as e:
        Membership(new).validate(w.org1["bob"].cert_der, WRITERS, NOW_MS)
    assert _code(e) == "revoked_identity"
    # the next CRL applies on top of the new configuration
    crl2 = w.org1.ca.crl()
    newer = config_update.apply(new, Membership(new), w.org1["admin"].cert_der,
                                _crl_payload("org1", crl2))
    assert newer.sequence == w.config.sequence + 2


def test_client_cannot_publish_a_crl(fresh_world: World) -> None:
    w = fresh_world
    with pytest.raises(Unauthorized) as e:
        config_update.apply(w.config, Membership(w.config), w.org1["alice"].cert_der,
                            _crl_payload("org1", w.org1.ca.crl()))
    assert _code(e) == "wrong_role"


def test_admin_of_another_org_cannot_publish_its_crl(fresh_world: World) -> None:
    w = fresh_world
    crl = w.org1.ca.crl()
    with pytest.raises(Unauthorized) as e:
        config_update.apply(w.config, Membership(w.config), w.org2["admin"].cert_der,
                            _crl_payload("org1", crl))
    assert _code(e) == "wrong_role"
    # nor publish a CRL of its own CA under the other org's name, or a CRL of another CA
    with pytest.raises(ConfigError):
        config_update.apply(w.config, Membership(w.config), w.org2["admin"].cert_der,
                            _crl_payload("org2", crl))


def test_same_or_older_crl_is_stale(fresh_world: World) -> None:
    w = fresh_world
    old = w.org1.ca.crl()
    current = w.org1.ca.crl()
    cfg = config_update.apply(w.config, Membership(w.config), w.org1["admin"].cert_der,
                              _crl_payload("org1", current))
    for crl in (current, old):
        with pytest.raises(ConfigError) as e:
            config_update.apply(cfg, Membership(cfg), w.org1["admin"].cert_der,
                                _crl_payload("org1", crl))
        assert _code(e) == "stale_crl"


def test_full_configuration_replacement_is_refused(fresh_world: World) -> None:
    w = fresh_world
    p = Payload(CHAIN_ID, TxType.CONFIG, bytes(16), NOW_MS, ConfigBody(w.config.encode()))
    with pytest.raises(ConfigError) as e:
        config_update.apply(w.config, Membership(w.config), w.org1["admin"].cert_der, p)
    assert _code(e) == "config_not_allowed"
    p = Payload(CHAIN_ID, TxType.NOTARY_HASH, bytes(16), NOW_MS,
                HashRecord(NotaryMeta("b", "", 0), "sha256", bytes(32)))
    with pytest.raises(ConfigError):
        config_update.apply(w.config, Membership(w.config), w.org1["admin"].cert_der, p)


def test_revoked_admin_cannot_publish(fresh_world: World) -> None:
    w = fresh_world
    w.org1.ca.revoke(_serial(w.org1["admin"]))
    cfg = config_update.apply(w.config, Membership(w.config), w.org1["admin"].cert_der,
                              _crl_payload("org1", w.org1.ca.crl()))
    with pytest.raises(Unauthorized) as e:
        config_update.apply(cfg, Membership(cfg), w.org1["admin"].cert_der,
                            _crl_payload("org1", w.org1.ca.crl()))
    assert _code(e) == "revoked_identity"


def test_config_validation_rules(world: World) -> None:
    import dataclasses
    c = world.config
    c.validate()
    assert c.commit_quorum() == 1
    for bad in [
        dataclasses.replace(c, organizations=()),
        dataclasses.replace(c, organizations=c.organizations * 2),
        dataclasses.replace(c, validators=()),
        dataclasses.replace(c, validators=c.validators * 2),
        dataclasses.replace(c, validators=(dataclasses.replace(c.validators[0], org_id="x"),)),
    ]:
        with pytest.raises(ConfigError):
            bad.validate()
    assert ChainConfig.decode(c.encode()) == c


# -- the SDK's local network ---------------------------------------------------------------


def test_init_network_and_revoke(tmp_path: Path) -> None:
    net = init_network(tmp_path / "net", chain_id="netx", orgs=["orga", "orgb"])
    again = LocalNetwork.open(tmp_path / "net")
    assert again.chain_id == "netx"
    for org in ("orga", "orgb"):
        assert stat.S_IMODE((net.org_dir(org) / "passphrase").stat().st_mode) == 0o600
    alice = net.identity()
    assert (alice.org_id, alice.name, alice.role) == ("orga", "alice", "client")
    with pytest.raises(ConfigError):
        init_network(tmp_path / "net")
    with pytest.raises(ConfigError):
        net.identity("orga")
    from consortia.ledger.genesis import load_genesis
    g = load_genesis(net.genesis_path)
    assert g.hash.hex() == net.doc["genesis_hash"]
    assert [o.id for o in g.config.organizations] == ["orga", "orgb"]
    tx = net.revoke("orga", "alice")
    assert tx.payload.type is TxType.CRL_UPDATE
    new = config_update.apply(g.config, Membership(g.config), net.identity("orga/admin").cert_der,
                              tx.payload)
    with pytest.raises(Unauthorized) as e:
        Membership(new).validate(alice.cert_der, WRITERS, tx.payload.timestamp_ms)
    assert _code(e) == "revoked_identity"
    assert net.ca("orga").crl_number == 1  # persisted


def test_commit_quorum_per_consensus_kind(world: World) -> None:
    import dataclasses

    from consortia.types.config import ConsensusKind
    v = world.config.validators[0]
    for n, raft, pbft in [(1, 1, 1), (3, 2, 2), (4, 3, 3), (5, 3, 4), (6, 4, 4), (7, 4, 5),
                          (10, 6, 7)]:
        vals = tuple(dataclasses.replace(v, id=f"v{i}") for i in range(n))
        assert dataclasses.replace(world.config, validators=vals,
                                   consensus=ConsensusKind.RAFT).commit_quorum() == raft
        q = dataclasses.replace(world.config, validators=vals,
                                consensus=ConsensusKind.PBFT).commit_quorum()
        assert q == pbft
        f = (n - 1) // 3
        assert 2 * q - n >= f + 1, "two quorums must share an honest validator"
