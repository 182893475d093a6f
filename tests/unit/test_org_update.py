"""Organization changes as configuration transactions (``OrgUpdate``, applied by
``identity.config_update``) under the membership voting rule (``policies.membership``): who
must approve, what is refused and with which code, and what the chain does with the
certificates of an organization added or removed (admission, execution, offline proofs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consortia.execution import notary as executor
from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.identity.config_update import apply
from consortia.identity.membership import Membership
from consortia.ledger.proof import build_proof, verify_proof
from consortia.node.views import body_view
from consortia.sdk import init_network
from consortia.sdk.tx import SignedTx, approve, org_update, sign
from consortia.txpool.admission import Admission
from consortia.types.block import TxStatus
from consortia.types.codec import encode
from consortia.types.config import (
    CONFIG_VERSION,
    MAX_ORGS,
    ChainConfig,
    Comparator,
    ConsensusKind,
    MembershipPolicy,
    Policies,
    Profile,
    Role,
    ValidatorConfig,
)
from consortia.types.errors import ConfigError, InvalidTransaction, Malformed, Unauthorized
from consortia.types.tx import (
    Envelope,
    OrgUpdate,
    Payload,
    TxType,
    ValidatorUpdate,
    decode_body,
    encode_body,
)
from tests.unit.conftest import (
    _VALID_FROM,
    CHAIN_ID,
    NOW_MS,
    SUITE,
    Harness,
    Org,
    World,
    digest_tx,
    make_org,
)

GT, GTE = Comparator.GREATER_THAN, Comparator.GREATER_THAN_OR_EQUAL_TO


@pytest.fixture(scope="module")
def orgs() -> dict[str, Org]:
    """org1 (runs the only validator, of a raft chain), org2, org3 in force; org4 and org5
    outside."""
    return {o: make_org(o, validator=o == "org1") for o in
            ("org1", "org2", "org3", "org4", "org5")}


def _config(orgs: dict[str, Org], *, members: tuple[str, ...] = ("org1", "org2", "org3"),
            policy: MembershipPolicy | None = None) -> ChainConfig:
    return ChainConfig(
        chain_id=CHAIN_ID, profile=Profile.ANT, suite="p256-sha256",
        consensus=ConsensusKind.RAFT,
        organizations=tuple(orgs[o].org_config() for o in members),
        validators=(ValidatorConfig("validator0", "org1", orgs["org1"]["validator0"].cert_der),),
        policies=Policies(membership=policy or MembershipPolicy()))


def _apply(config: ChainConfig, tx: SignedTx) -> ChainConfig:
    env = Envelope.decode(tx.envelope)
    return apply(config, Membership(config), env.signer, Payload.decode(env.payload))


def _tx(orgs: dict[str, Org], voters: tuple[str, ...], update: OrgUpdate) -> SignedTx:
    """``update`` signed by the first voter's admin, approved by the others' (at NOW_MS)."""
    admins = [orgs[o]["admin"] for o in voters]
    approvals = tuple(approve(a, CHAIN_ID, update) for a in admins[1:])
    return sign(admins[0], CHAIN_ID, replace(update, approvals=approvals), timestamp_ms=NOW_MS)


def _add(orgs: dict[str, Org], org_id: str = "org4", sequence: int = 0) -> OrgUpdate:
    return OrgUpdate("add", org_id, orgs[org_id].ca.cert_der, sequence)


def _refused(config: ChainConfig, tx: SignedTx, exc: type[Exception], code: str) -> None:
    with pytest.raises(exc) as err:
        _apply(config, tx)
    assert err.value.code == code, err.value  # type: ignore[attr-defined]


# -- the rule ----------------------------------------------------------------------------------


def test_a_majority_adds_an_organization_whose_certificates_then_validate(
        orgs: dict[str, Org]) -> None:
    config = _config(orgs)
    before = config.encode()
    after = _apply(config, _tx(orgs, ("org1", "org2"), _add(orgs)))
    assert config.encode() == before  # the configuration in force is untouched
    assert [o.id for o in after.organizations] == ["org1", "org2", "org3", "org4"]
    assert after.org("org4").ca_cert == orgs["org4"].ca.cert_der  # type: ignore[union-attr]
    assert after.sequence == 1 and after.validators == config.validators
    new = Membership(after)
    for name, role in (("alice", Role.CLIENT), ("admin", Role.ADMIN), ("peer0", Role.PEER)):
        assert new.validate(orgs["org4"][name].cert_der, (role,), NOW_MS).org_id == "org4"
    with pytest.raises(Unauthorized) as err:
        Membership(config).validate(orgs["org4"]["alice"].cert_der, (Role.CLIENT,), NOW_MS)
    assert err.value.code == "unknown_identity"
    # Its validators can now be voted in like any organization's.
    v = orgs["org4"].add("validator9", Role.VALIDATOR)
    vu = ValidatorUpdate("add", "validator9", "org4", v.cert_der, "127.0.0.1:21999", 1)
    admins = [orgs[o]["admin"] for o in ("org4", "org1", "org2")]
    signed = sign(admins[0], CHAIN_ID, replace(vu, approvals=tuple(
        approve(a, CHAIN_ID, vu) for a in admins[1:])), timestamp_ms=NOW_MS)
    assert _apply(after, signed).validator("validator9") is not None


def test_a_majority_removes_an_organization(orgs: dict[str, Org]) -> None:
    config = _config(orgs)
    after = _apply(config, _tx(orgs, ("org3", "org2"), OrgUpdate("remove", "org3", b"", 0)))
    assert [o.id for o in after.organizations] == ["org1", "org2"] and after.sequence == 1
    with pytest.raises(Unauthorized) as err:
        Membership(after).validate(orgs["org3"]["alice"].cert_der, (Role.CLIENT,), NOW_MS)
    assert err.value.code == "unknown_identity"


def test_refusals(orgs: dict[str, Org]) -> None:
    config = _config(orgs)
    voters = ("org1", "org2")
    remove = OrgUpdate("remove", "org2", b"", 0)
    org1_as_org9 = make_org("org9")  # a real CA, but its O= is org9
    ee = orgs["org4"]["alice"].cert_der  # an end-entity certificate, not a CA
    cases = [
        (replace(_add(orgs), sequence=3), ConfigError, "stale_config"),
        (OrgUpdate("add", "org2", orgs["org2"].ca.cert_der, 0), ConfigError, "duplicate_org"),
        (OrgUpdate("add", "org4", org1_as_org9.ca.cert_der, 0), ConfigError,
         "invalid_ca_cert"),
        (OrgUpdate("add", "org4", ee, 0), ConfigError, "invalid_ca_cert"),
        (OrgUpdate("add", "org4", b"not a certificate", 0), ConfigError, "invalid_ca_cert"),
        (OrgUpdate("remove", "org7", b"", 0), ConfigError, "unknown_org"),
        (OrgUpdate("remove", "org1", b"", 0), ConfigError, "org_has_validators"),
    ]
    for update, exc, code in cases:
        _refused(config, _tx(orgs, voters, update), exc, code)
    _refused(config, _tx(orgs, ("org2",), remove), Unauthorized, "not_enough_approvals")
    # Only an admin may sign or approve.
    alice_signs = sign(orgs["org1"]["alice"], CHAIN_ID, replace(
        _add(orgs), approvals=(approve(orgs["org2"]["admin"], CHAIN_ID, _add(orgs)),)),
        timestamp_ms=NOW_MS)
    _refused(config, alice_signs, Unauthorized, "wrong_role")
    alice_approves = sign(orgs["org1"]["admin"], CHAIN_ID, replace(
        _add(orgs), approvals=(approve(orgs["org2"]["alice"], CHAIN_ID, _add(orgs)),)),
        timestamp_ms=NOW_MS)
    _refused(config, alice_approves, Unauthorized, "wrong_role")
    # An approval signed over another change.
    other = _add(orgs, "org5")
    forged = replace(_add(orgs), approvals=(approve(orgs["org2"]["admin"], CHAIN_ID, other),))
    _refused(config, sign(orgs["org1"]["admin"], CHAIN_ID, forged, timestamp_ms=NOW_MS),
             Unauthorized, "bad_signature")
    # An approval from an organization not in force (the one being added) is refused.
    with pytest.raises(Unauthorized, match="approval 0: ") as err:
        _apply(config, _tx(orgs, ("org1", "org4"), _add(orgs)))
    assert err.value.code == "unknown_identity"
    # Two approvals of one organization count once: 1 of 3 is no majority.
    twice = replace(_add(orgs), approvals=(approve(orgs["org1"]["admin"], CHAIN_ID,
                                                   _add(orgs)),))
    _refused(config, sign(orgs["org1"]["admin"], CHAIN_ID, twice, timestamp_ms=NOW_MS),
             Unauthorized, "not_enough_approvals")


def test_the_last_organization_cannot_leave(orgs: dict[str, Org]) -> None:
    config = _config(orgs, members=("org1",), policy=MembershipPolicy(0, GT))
    _refused(config, _tx(orgs, ("org1",), OrgUpdate("remove", "org1", b"", 0)), ConfigError,
             "last_org")


def _ca(org_id: str, *, issuer: CertificateAuthority | None = None,
        not_before: dt.datetime | None = None, curve: ec.EllipticCurve | None = None) -> bytes:
    """A CA certificate of ``org_id`` built by hand: issued by ``issuer`` (default itself),
    from ``not_before``, on ``curve`` (default P-256)."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{org_id} CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id)])
    start = not_before or _VALID_FROM
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True))
    if issuer is None:
        return cert_der(builder.sign(key, hashes.SHA256()))
    from consortia.crypto.p256 import native_signing_key
    return cert_der(builder.sign(native_signing_key(issuer.key), hashes.SHA256()))


def test_the_ca_certificate_must_be_a_root_of_the_chain_suite_and_valid(
        orgs: dict[str, Org]) -> None:
    config = _config(orgs)
    good = _ca("org6")
    assert _apply(config, _tx(orgs, ("org1", "org2"), OrgUpdate("add", "org6", good, 0))
                  ).org("org6") is not None
    later = dt.datetime.fromtimestamp(NOW_MS / 1000 + 86_400, dt.UTC)
    for bad, why in ((_ca("org6", issuer=orgs["org2"].ca), "not self-signed"),
                     (_ca("org6", not_before=later), "validity window"),
                     (_ca("org6", curve=ec.SECP384R1()), "suite")):
        with pytest.raises(ConfigError, match=why) as err:
            _apply(config, _tx(orgs, ("org1", "org2"), OrgUpdate("add", "org6", bad, 0)))
        assert err.value.code == "invalid_ca_cert"


def test_max_orgs(orgs: dict[str, Org]) -> None:
    config = _config(orgs, policy=MembershipPolicy(0, GT))
    filler = tuple(replace(orgs["org3"].org_config(), id=f"f{i}")
                   for i in range(MAX_ORGS - len(config.organizations)))
    full = replace(config, organizations=config.organizations + filler)
    assert len(full.organizations) == MAX_ORGS
    # Checked before the certificates, so the filler need not be loadable: apply directly.
    env = Envelope.decode(_tx(orgs, ("org1",), _add(orgs)).envelope)
    with pytest.raises(ConfigError) as err:
        apply(full, Membership(config), env.signer, Payload.decode(env.payload))
    assert err.value.code == "too_many_orgs"


def test_replayed_approvals_are_refused_once_the_configuration_moved(
        orgs: dict[str, Org]) -> None:
    config = _config(orgs)
    tx = _tx(orgs, ("org1", "org2"), _add(orgs))
    after = _apply(config, tx)
    _refused(after, tx, ConfigError, "stale_config")  # the same transaction again
    # The approvals of sequence 0 carried by a change that names sequence 1 do not verify.
    moved = replace(Payload.decode(Envelope.decode(tx.envelope).payload).body, sequence=1)
    assert isinstance(moved, OrgUpdate)
    _refused(after, sign(orgs["org1"]["admin"], CHAIN_ID, moved, timestamp_ms=NOW_MS),
             Unauthorized, "bad_signature")
    removal = _tx(orgs, ("org3", "org2"), OrgUpdate("remove", "org3", b"", 0))
    _refused(after, removal, ConfigError, "stale_config")


# -- the membership policy ---------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "total", "passes"), [
    (MembershipPolicy(50, GT), 4, 3),
    (MembershipPolicy(50, GTE), 4, 2),
    (MembershipPolicy(50, GT), 3, 2),
    (MembershipPolicy(50, GTE), 3, 2),
    (MembershipPolicy(0, GT), 5, 1),
    (MembershipPolicy(0, GTE), 5, 0),
    (MembershipPolicy(100, GTE), 5, 5),
    (MembershipPolicy(100, GT), 5, None),
    (MembershipPolicy(66, GT), 3, 2),
    (MembershipPolicy(67, GTE), 3, 3),
])
def test_policy_thresholds(policy: MembershipPolicy, total: int, passes: int | None) -> None:
    """``passes``: the fewest approving organizations that pass (None: no count does)."""
    results = [policy.satisfied(k, total) for k in range(total + 1)]
    first = next((k for k, ok in enumerate(results) if ok), None)
    assert first == passes
    assert all(results[first:]) if first is not None else not any(results)


@pytest.mark.parametrize(("policy", "voters", "ok"), [
    (MembershipPolicy(100, GTE), ("org1", "org2"), False),
    (MembershipPolicy(100, GTE), ("org1", "org2", "org3"), True),
    (MembershipPolicy(0, GT), ("org1",), True),
    (MembershipPolicy(0, GTE), ("org1",), True),
    (MembershipPolicy(66, GT), ("org1", "org2"), True),
    (MembershipPolicy(67, GT), ("org1", "org2"), False),
    (MembershipPolicy(50, GT), ("org1",), False),
])
def test_apply_follows_the_policy_in_force(orgs: dict[str, Org], policy: MembershipPolicy,
                                           voters: tuple[str, ...], ok: bool) -> None:
    config = _config(orgs, policy=policy)
    tx = _tx(orgs, voters, _add(orgs))
    if ok:
        assert _apply(config, tx).org("org4") is not None
    else:
        _refused(config, tx, Unauthorized, "not_enough_approvals")


def test_policy_in_the_configuration(orgs: dict[str, Org]) -> None:
    config = _config(orgs, policy=MembershipPolicy(75, GTE))
    back = ChainConfig.decode(config.encode())
    assert back == config and back.policies.membership == MembershipPolicy(75, GTE)
    assert config.summary()["policies"]["membership"] == {
        "percentage": 75, "comparator": "GREATER_THAN_OR_EQUAL_TO"}
    assert ChainConfig.decode(_config(orgs).encode()).policies.membership == \
        MembershipPolicy(50, GT)
    config.validate()
    for bad in (MembershipPolicy(101, GTE), MembershipPolicy(-1, GT), MembershipPolicy(100, GT)):
        with pytest.raises(ConfigError):
            replace(config, policies=Policies(membership=bad)).validate()
    # Strict decoding: the version, the percentage's range, the comparator's spelling.
    from consortia.types.codec import decode
    fields = decode(config.encode())
    assert fields[0] == 3 and CONFIG_VERSION == 4  # no evm section: still version 3

    def spelled(f: list) -> bytes:  # type: ignore[type-arg]
        return encode(f)
    for mutate in (lambda f: f.__setitem__(0, 2),
                   lambda f: f[7][2].__setitem__(0, 101),
                   lambda f: f[7][2].__setitem__(1, "greater_than"),
                   lambda f: f[7].pop(),
                   lambda f: f[7][2].append(1)):
        f = decode(config.encode())
        mutate(f)
        with pytest.raises(Malformed):
            ChainConfig.decode(spelled(f))


def test_init_network_writes_the_policy(tmp_path: Path) -> None:
    from consortia.ledger.genesis import load_genesis
    net = init_network(tmp_path / "n", chain_id="pol", orgs=["a", "b"],
                       membership=MembershipPolicy(100, GTE), port=21400)
    assert load_genesis(net.genesis_path).config.policies.membership == \
        MembershipPolicy(100, GTE)
    default = init_network(tmp_path / "d", chain_id="pol", port=21410)
    assert load_genesis(default.genesis_path).config.policies.membership == MembershipPolicy()


def test_local_network_prepares_org_changes_with_just_enough_voters(tmp_path: Path) -> None:
    from consortia.ledger.genesis import load_genesis
    net = init_network(tmp_path / "n", chain_id="lo", orgs=["a", "b", "c"], port=21420,
                       membership=MembershipPolicy(60, GTE))
    config = load_genesis(net.genesis_path).config
    tx = net.add_org("d", config=config)
    body = tx.payload.body
    assert isinstance(body, OrgUpdate) and len(body.approvals) == 1  # a + b: 2/3 >= 60%
    after = _apply_at(config, tx)
    assert after.org("d") is not None
    # Again (from the summary GET /v1/chain returns): the same organization, same CA.
    again = net.add_org("d", config=config.summary()).payload.body
    assert isinstance(again, OrgUpdate) and again.ca_cert == body.ca_cert
    assert len(again.approvals) == 1 and again.sequence == 0
    assert Membership(after).validate(net.identity("d/alice").cert_der, (Role.CLIENT,),
                                      tx.payload.timestamp_ms).org_id == "d"
    removal = net.remove_org("c", config=after)
    rb = removal.payload.body
    assert isinstance(rb, OrgUpdate) and len(rb.approvals) == 2  # c + a + b: 3/4 >= 60%
    assert Membership(after).identify(Envelope.decode(removal.envelope).signer).org_id == "c"
    assert _apply_at(after, removal).org("c") is None


def _apply_at(config: ChainConfig, tx: SignedTx) -> ChainConfig:
    env = Envelope.decode(tx.envelope)
    return apply(config, Membership(config), env.signer, tx.payload)


# -- the body ----------------------------------------------------------------------------------


def test_body_encoding_and_strict_decoding(orgs: dict[str, Org]) -> None:
    tx = _tx(orgs, ("org1", "org2"), _add(orgs))
    payload = Payload.decode(Envelope.decode(tx.envelope).payload)
    assert payload.type is TxType.ORG_UPDATE == 3
    body = payload.body
    assert isinstance(body, OrgUpdate) and len(body.approvals) == 1
    assert decode_body(TxType.ORG_UPDATE, encode_body(body)) == body
    raw = encode_body(body)
    bad = [
        ["add", "org4", b"x", 0],                       # 4 fields
        ["join", "org4", b"x", 0, []],                  # op
        ["add", "", b"x", 0, []],                       # empty org id
        ["add", "org 4", b"x", 0, []],                  # org id characters
        ["add", "x" * 65, b"x", 0, []],                 # org id length
        ["add", "org4", b"", 0, []],                    # add without a certificate
        ["remove", "org4", b"x", 0, []],                # remove with a certificate
        ["add", "org4", b"x" * 8193, 0, []],            # certificate too large
        ["add", "org4", b"x", -1, []],                  # sequence
        ["add", "org4", b"x", 0, [[b"c"]]],             # approval shape
        ["add", "org4", b"x", 0, [[b"c", b""]]],        # empty approval signature
        ["add", "org4", b"x", 0, [[b"c", b"s"]] * 257],  # too many approvals
        [*raw[:4], "not a list"],
    ]
    for value in bad:
        with pytest.raises(InvalidTransaction):  # Malformed, or TooLarge for sizes
            decode_body(TxType.ORG_UPDATE, value)
    # The approval message is domain-separated from a validator change's.
    assert body.approval_message(CHAIN_ID) != body.approval_message("other-chain")
    assert body.approval_message(CHAIN_ID) == replace(body, approvals=()).approval_message(
        CHAIN_ID)
    view = body_view(payload)
    assert view["op"] == "add" and view["org_id"] == "org4" and view["approvals"] == 1
    assert view["config_sequence"] == 0 and view["ca_cert_sha256"]


def test_sdk_org_update_signs_by_the_first_admin(orgs: dict[str, Org]) -> None:
    admins = [orgs[o]["admin"] for o in ("org2", "org1", "org3")]
    tx = org_update(admins, CHAIN_ID, _add(orgs))
    env = Envelope.decode(tx.envelope)
    assert env.signer == orgs["org2"]["admin"].cert_der
    body = tx.payload.body
    assert isinstance(body, OrgUpdate)
    assert [a.cert for a in body.approvals] == [a.cert_der for a in admins[1:]]
    with pytest.raises(ValueError):
        org_update([], CHAIN_ID, _add(orgs))


# -- on a chain: admission, execution, proofs --------------------------------------------------


def test_on_chain_add_then_remove(tmp_path: Path, fresh_world: World) -> None:
    """World: org1 (validator) and org2 — a strict majority is both of them."""
    w = fresh_world
    org3 = make_org("org3")
    h = Harness(tmp_path / "ledger.db", w)
    try:
        before = digest_tx(org3["alice"], "too-early")
        with pytest.raises(Unauthorized):
            h.admit(before)
        add = OrgUpdate("add", "org3", org3.ca.cert_der, 0)
        signed = sign(w.org1["admin"], CHAIN_ID, replace(
            add, approvals=(approve(w.org2["admin"], CHAIN_ID, add),)), timestamp_ms=NOW_MS)
        block, results = h.commit(signed)
        assert block.header.is_config and results[0].status is TxStatus.VALID
        assert h.chain.config.org("org3") is not None
        # org3's client now commits, and its transaction's proof verifies against genesis.
        first = digest_tx(org3["alice"], "org3-first")
        _, results = h.commit(first)
        assert results[0].status is TxStatus.VALID
        proof = build_proof(h.store, SUITE, w.genesis.hash, first.id)
        v = verify_proof(proof, w.genesis)
        assert (v.signer_org, v.signer_name, v.height) == ("org3", "alice", 2)
        # A transaction of org3 waits in the pool while org3 is removed.
        pending = h.admit(digest_tx(org3["bob"], "org3-pending"))
        remove = OrgUpdate("remove", "org3", b"", 1)
        signed = sign(org3["admin"], CHAIN_ID, replace(remove, approvals=(
            approve(w.org1["admin"], CHAIN_ID, remove),
            approve(w.org2["admin"], CHAIN_ID, remove))), timestamp_ms=NOW_MS)
        _, results = h.commit(signed)
        assert results[0].status is TxStatus.VALID and h.chain.config.org("org3") is None
        # Execution refuses it: it is ordered, but INVALID, never committed as valid.
        _, results = h.order(pending)
        assert results[0].status is TxStatus.INVALID and results[0].code == "unknown_identity"
        # Admission refuses new ones.
        with pytest.raises(Unauthorized) as err:
            h.admit(digest_tx(org3["alice"], "org3-late"))
        assert err.value.code == "unknown_identity"
        # org3's old proof still verifies: history is not rewritten.
        assert verify_proof(build_proof(h.store, SUITE, w.genesis.hash, first.id),
                            w.genesis).signer_org == "org3"
        # A fresh admission (a restarted node) and the executor agree with the node.
        adm = Admission(SUITE, h.chain.config, lambda: NOW_MS)
        with pytest.raises(Unauthorized):
            adm.check(digest_tx(org3["alice"], "org3-late2").envelope)
        ex = executor.execute(SUITE, h.chain.config, Membership(h.chain.config), pending)
        assert ex.results[0].code == "unknown_identity"
    finally:
        h.close()


def test_admission_dry_runs_an_org_update(tmp_path: Path, fresh_world: World) -> None:
    w = fresh_world
    h = Harness(tmp_path / "ledger.db", w)
    try:
        add = OrgUpdate("add", "org3", make_org("org3").ca.cert_der, 0)
        alone = sign(w.org1["admin"], CHAIN_ID, add, timestamp_ms=NOW_MS)
        with pytest.raises(Unauthorized) as err:
            h.admit(alone)
        assert err.value.code == "not_enough_approvals"
        assert h.store.height == 0
    finally:
        h.close()
